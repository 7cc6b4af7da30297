"""set-image and promote: pin one component's image (a tag or a digest) in one environment,
as one edit of platform.yaml (release/spec_text.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from platformgen.errors import ReleaseError, SpecError
from platformgen.release.spec_text import set_pin
from platformgen.spec.load import parse_spec
from platformgen.spec.model import ImagePin, PlatformSpec

TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageReference:
    """What `set-image` was asked to pin: an optional repository and a tag or a digest."""

    repository: str | None
    tag: str | None = None
    digest: str | None = None

    @property
    def pin(self) -> ImagePin:
        return ImagePin(tag=self.tag, digest=self.digest)

    def __str__(self) -> str:
        where = self.repository or ""
        return f"{where}@{self.digest}" if self.digest else f"{where}:{self.tag}"


def parse_reference(text: str) -> ImageReference:
    """`[repository]:tag` or `[repository]@sha256:<64 hex>`; anything else is refused."""
    rest, at, digest = text.partition("@")
    if at:
        if not DIGEST.match(digest):
            raise ReleaseError(
                f"image reference {text!r}: the digest must be sha256: and 64 lowercase hex "
                "characters"
            )
        if re.search(r":[^/]*$", rest):
            raise ReleaseError(
                f"image reference {text!r}: give a tag or a digest, not both (the digest alone "
                "names the image)"
            )
        return ImageReference(repository=rest or None, digest=digest)
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon <= slash:
        raise ReleaseError(
            f"image reference {text!r}: needs a tag (':<tag>') or a digest ('@sha256:<hex>')"
        )
    repository, tag = rest[:colon], rest[colon + 1 :]
    if not TAG.match(tag):
        raise ReleaseError(
            f"image reference {text!r}: {tag!r} is not a valid tag "
            "([A-Za-z0-9_][A-Za-z0-9_.-], at most 128 characters)"
        )
    return ImageReference(repository=repository or None, tag=tag)


def effective_reference(spec: PlatformSpec, component: str, environment: str) -> ImageReference:
    """The tag or digest `component` runs with in `environment`."""
    env = spec.environments[environment]
    repository = spec.components[component].image
    pin = env.images.get(component)
    if pin is not None and pin.digest is not None:
        return ImageReference(repository, digest=pin.digest)
    if pin is not None and pin.tag is not None:
        return ImageReference(repository, tag=pin.tag)
    return ImageReference(repository, tag=env.image_tag or spec.defaults.image_tag)


def requires_digests(spec: PlatformSpec, environment: str) -> bool:
    """Whether the spec marks `environment` as accepting only digests."""
    return bool(getattr(spec.environments[environment], "require_digests", False))


def set_image(
    text: str, spec: PlatformSpec, component: str, reference: str, environment: str, source: str
) -> str:
    """The spec text with `component` pinned to `reference` in `environment`, validated."""
    if component not in spec.components:
        raise ReleaseError(f"{source}: components.{component}: no such component")
    if environment not in spec.environments:
        raise ReleaseError(f"{source}: environments.{environment}: no such environment")
    ref = parse_reference(reference)
    repository = spec.components[component].image
    if ref.repository is not None and ref.repository != repository:
        raise ReleaseError(
            f"image reference {reference!r}: {component} runs {repository!r} "
            f"(components.{component}.image); pin a tag or digest of that repository"
        )
    if ref.tag is not None and requires_digests(spec, environment):
        raise ReleaseError(
            f"environments.{environment} requires digests: {reference!r} is a tag; "
            "pin @sha256:<digest>"
        )
    key, value = ("digest", ref.digest) if ref.digest else ("tag", ref.tag)
    assert value is not None
    edited = set_pin(text, environment, component, key, value)
    try:
        new_spec = parse_spec(edited, source=source)
    except SpecError as err:  # pragma: no cover - a bug in the edit, not in the request
        raise AssertionError(f"the edited spec does not load: {err.problems}") from err
    got = new_spec.environments[environment].images.get(component)
    if got != ref.pin:
        raise AssertionError(f"the edit pinned {got}, not {ref.pin}")
    return edited


def promote(
    text: str, spec: PlatformSpec, component: str, source_env: str, target_env: str, source: str
) -> str:
    """The spec text with `target_env` running exactly the image `source_env` runs."""
    for env in (source_env, target_env):
        if env not in spec.environments:
            raise ReleaseError(f"{source}: environments.{env}: no such environment")
    if component not in spec.components:
        raise ReleaseError(f"{source}: components.{component}: no such component")
    ref = effective_reference(spec, component, source_env)
    if ref.digest is None and requires_digests(spec, target_env):
        raise ReleaseError(
            f"environments.{target_env} requires digests, but {component} runs the floating "
            f"tag {ref.tag!r} in {source_env}: pin a digest there first "
            f"(platformgen set-image {component} {ref.repository}@sha256:<digest> "
            f"--env {source_env})"
        )
    return set_image(text, spec, component, str(ref), target_env, source)
