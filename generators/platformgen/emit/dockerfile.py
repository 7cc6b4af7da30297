"""Emit one Dockerfile per image in `builds.images`, all from one template (dockerfile.j2).

A Dockerfile is plain text, not YAML, so a text template is the right tool here (the house
rule against templates is about YAML). What differs between images is spec data: the folder,
package and repository, the UID (`defaults.runAsUser`), the ports of the components that run
the image (EXPOSE), its env defaults and default arguments.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files

import jinja2

from platformgen.serialize import HEADER
from platformgen.spec.builds import IMAGE_ENV, image_ports
from platformgen.spec.model import Builds, ImageBuild, PlatformSpec

TEMPLATE = "dockerfile.j2"

_PLAIN = re.compile(r"^[A-Za-z0-9_./:@%+,=-]+$")


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # a Dockerfile, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    source = files("platformgen.emit").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return environment.from_string(source)


def dockerfile_path(folder: str) -> str:
    """Where the Dockerfile of the image built from `folder` goes, relative to the repo root."""
    return f"{folder}/Dockerfile"


def source_line(folder: str) -> str:
    """The header line naming the spec entry a Dockerfile is rendered from."""
    return f"# Source: builds.images.{folder} in platform.yaml"


def rendered_here(path: str, head: str) -> bool:
    """Whether the file at `path` (relative to the repo root), beginning with `head`, is a
    Dockerfile platformgen rendered for that folder: an orphan once its entry is gone. A
    rendered Dockerfile copied elsewhere (a golden tree, a fixture) names another folder."""
    folder, _, name = path.rpartition("/")
    return name == "Dockerfile" and head.startswith(HEADER) and source_line(folder) in head


def _env_value(value: str) -> str:
    if _PLAIN.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _step_images(spec: PlatformSpec) -> set[str]:
    return {step.image for p in spec.pipelines.values() for step in p.steps.values()}


def _spark_images(spec: PlatformSpec) -> set[str]:
    """Images a SparkApplication runs: Java's login (Hadoop's, in Spark) needs a passwd entry
    for the pods' UID, and a bare `USER <uid>` has none."""
    return {c.image for c in spec.components.values() if c.kind == "SparkApplication"}


def render_dockerfile(spec: PlatformSpec, builds: Builds, folder: str, image: ImageBuild) -> str:
    """The Dockerfile text of the image built from `folder`."""
    ports = image_ports(spec, image.repository)
    env = list(IMAGE_ENV)
    env += [(name, _env_value(value)) for name, value in image.env.items()]
    served = image_ports(spec, image.repository, webhooks=False)
    if image.port_env is not None and served:
        env.append((image.port_env, str(served[0][0])))
    packages = [
        *builds.shared_packages,
        *(f"{other}/{builds.images[other].package}" for other in image.includes),
        f"{folder}/{image.package}",
    ]
    return _template().render(
        header=HEADER.rstrip("\n"),
        folder=folder,
        source=source_line(folder),
        repository=image.repository,
        description=image.description,
        shared=bool(builds.shared_packages),
        base_image=builds.base_image,
        base_digest="@sha256:" in builds.base_image,
        pipeline_step=image.repository in _step_images(spec),
        env=[f"{name}={value}" for name, value in env],
        copies=[(path, f"/app/{path.rsplit('/', 1)[-1]}") for path in packages],
        notes=image.notes,
        uid=spec.defaults.run_as_user,
        user=spec.platform.name if image.repository in _spark_images(spec) else "",
        ports=[
            str(port) if protocol == "TCP" else f"{port}/{protocol.lower()}"
            for port, protocol in ports
        ],
        entrypoint=json.dumps(["python", "-m", image.package]),
        cmd=json.dumps(list(image.args)) if image.args else "",
    )


def emit_dockerfiles(spec: PlatformSpec) -> dict[str, str]:
    """`{<folder>/Dockerfile: text}` for every image in `builds.images` (none without builds)."""
    if spec.builds is None:
        return {}
    builds = spec.builds
    return {
        dockerfile_path(folder): render_dockerfile(spec, builds, folder, image)
        for folder, image in sorted(builds.images.items())
    }
