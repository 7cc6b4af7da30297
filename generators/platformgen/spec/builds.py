"""Rules about `builds` that span several fields. Each problem is `(spec path, message)`."""

from __future__ import annotations

from collections.abc import Iterator

from mlp_common import contracts

from platformgen.spec.model import PlatformSpec

Problem = tuple[str, str]

IMAGE_ENV: tuple[tuple[str, str], ...] = (
    ("PATH", "/opt/venv/bin:$PATH"),
    ("PYTHONPATH", "/app"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PYTHONUNBUFFERED", "1"),
    ("HOME", "/tmp"),
    ("KERAS_HOME", "/tmp/.keras"),
    ("MPLCONFIGDIR", "/tmp/matplotlib"),
    ("TF_CPP_MIN_LOG_LEVEL", "2"),
    (contracts.CODE_VERSION, "$CODE_VERSION"),
)
"""The ENV block every image starts with: the venv and packages on the path, no bytecode on
the read-only root filesystem, caches under the writable /tmp (an image without Keras or
matplotlib ignores theirs), quiet TensorFlow, and the code version from the build argument."""


def image_ports(
    spec: PlatformSpec, repository: str, webhooks: bool = True
) -> list[tuple[int, str]]:
    """`(port, protocol)` of every component that runs `repository`, sorted and unique;
    without `webhooks`, leaving out the ports that receive only alert webhooks (the program's
    own port, for `portEnv`, is the other one)."""
    return sorted(
        {
            (port.port, port.protocol)
            for component in spec.components.values()
            if component.image == repository
            for port in component.ports
            if webhooks
            or component.alert_webhook is None
            or port.name != component.alert_webhook.port
        }
    )


def check_builds(spec: PlatformSpec) -> list[Problem]:
    """Every problem in `builds`, in document order (none without builds)."""
    return list(_check_builds(spec)) if spec.builds is not None else []


def _check_builds(spec: PlatformSpec) -> Iterator[Problem]:
    assert spec.builds is not None
    fixed = {name for name, _ in IMAGE_ENV}
    owner: dict[str, str] = {}
    for folder, image in spec.builds.images.items():
        where = f"builds.images.{folder}"
        if image.repository in owner:
            yield (
                f"{where}.repository",
                f"{image.repository!r} is also built from {owner[image.repository]}",
            )
        owner.setdefault(image.repository, folder)
        for i, other in enumerate(image.includes):
            if other == folder:
                yield f"{where}.includes[{i}]", "an image cannot include itself"
            elif other not in spec.builds.images:
                yield f"{where}.includes[{i}]", f"unknown build {other!r} (not in builds.images)"
        for name in image.env:
            if name in fixed:
                yield f"{where}.env.{name}", "set by every image already (the template's ENV)"
        if image.port_env is not None:
            ports = image_ports(spec, image.repository, webhooks=False)
            if image.port_env in fixed or image.port_env in image.env:
                yield f"{where}.portEnv", f"{image.port_env} is also set in env"
            if len(ports) != 1:
                yield (
                    f"{where}.portEnv",
                    f"needs exactly one port among the components whose image is "
                    f"{image.repository}; found {len(ports)}",
                )
        if folder in spec.builds.shared_packages:
            yield where, "is also one of builds.sharedPackages"
        known = [o for o in image.includes if o in spec.builds.images and o != folder]
        names = [
            *(path.rsplit("/", 1)[-1] for path in spec.builds.shared_packages),
            *(spec.builds.images[o].package for o in known),
            image.package,
        ]
        for name in sorted({n for n in names if names.count(n) > 1}):
            yield f"{where}.package", f"two packages named {name!r} would both be /app/{name}"
        for port, protocol in image_ports(spec, image.repository):
            if protocol not in {"TCP", "UDP"}:
                yield (
                    f"{where}.repository",
                    f"port {port}/{protocol} of a component running it: EXPOSE takes TCP or UDP",
                )
