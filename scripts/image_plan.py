"""The plan of `make images` (pure; scripts/images.py builds it): which images platform.yaml
builds with which tags, the stand-in base a `builds.baseImage` name resolves to, and each
image's content key (its Dockerfile, every file its COPY lines send minus .dockerignore, the
base image's ID), which the build cache is keyed on."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_RECIPE = 1
"""Bump when the stand-in base is made differently (it is part of the base's key)."""
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
BASE_TAG = re.compile(r"^python:(?P<python>\d+\.\d+)(?:\.\d+)?-slim-(?P<suite>[a-z]+)$")
COPY = re.compile(r"^COPY\s+(?P<args>.+)$", re.IGNORECASE)


class ImagesError(Exception):
    """A problem the user can fix (printed as `images: <message>`, exit 1)."""


# --- the plan (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    folder: str
    """The key of `builds.images`: `<folder>/Dockerfile` is built."""
    repository: str
    package: str
    tags: tuple[str, ...]

    @property
    def dockerfile(self) -> str:
        return f"{self.folder}/Dockerfile"

    @property
    def slug(self) -> str:
        return self.folder.replace("/", "-")

    @property
    def references(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]


def plan(spec: Any) -> list[Image]:
    """The images `spec` (a platformgen PlatformSpec) builds, each with every tag the spec
    gives its repository: defaults.imageTag, each environment's imageTag and tag pins."""
    if spec.builds is None:
        return []
    images = []
    for folder, build in sorted(spec.builds.images.items()):
        images.append(Image(folder, build.repository, build.package, _tags(spec, build.repository)))
    return images


def _tags(spec: Any, repository: str) -> tuple[str, ...]:
    tags = {spec.defaults.image_tag}
    for env in spec.environments.values():
        if env.image_tag is not None:
            tags.add(env.image_tag)
        for name, pin in env.images.items():
            component = spec.components.get(name)
            if component is not None and component.image == repository and pin.tag:
                tags.add(pin.tag)
        for pipeline_name, pipeline in env.pipelines.items():
            steps = spec.pipelines[pipeline_name].steps if pipeline_name in spec.pipelines else {}
            for step, pin in pipeline.steps.items():
                if step in steps and steps[step].image == repository and pin.tag:
                    tags.add(pin.tag)
    return tuple(sorted(tags))


def base_reference(base_image: str) -> tuple[str, str, str]:
    """`builds.baseImage` -> (the name FROM resolves to, Debian suite, Python major.minor).

    Only the official Debian-based python images can be stood in for by Debian's own python3;
    a digest cannot be stood in for at all (a local build never has the registry's digest)."""
    if "@" in base_image:
        raise ImagesError(
            f"platform.yaml: builds.baseImage: {base_image!r} is pinned by digest; a local "
            "stand-in cannot have that digest. Build against the registry (see README, "
            "'Container images'), or build here with the tag only in a copy of the spec"
        )
    match = BASE_TAG.match(base_image.removeprefix("docker.io/library/"))
    if not match:
        raise ImagesError(
            f"platform.yaml: builds.baseImage: {base_image!r}: the local stand-in is built "
            "only for python:<major.minor>-slim-<debian suite> (Debian's own python3)"
        )
    name = base_image if "/" in base_image else f"docker.io/library/{base_image}"
    return name, match.group("suite"), match.group("python")


def copied_sources(dockerfile: str) -> list[str]:
    """Source paths of the Dockerfile's COPY lines that read the build context (not
    `--from=` another stage), in order, without duplicates."""
    sources: list[str] = []
    for line in _logical_lines(dockerfile):
        match = COPY.match(line)
        if not match:
            continue
        words = shlex.split(match.group("args"))
        if any(word.startswith("--from") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")][:-1]
        sources += [path.rstrip("/") for path in paths if path.rstrip("/") not in sources]
    return sources


def _logical_lines(text: str) -> Iterator[str]:
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def ignored(path: str, patterns: Sequence[str]) -> bool:
    """Whether .dockerignore `patterns` exclude `path` (relative, `/`-separated): a pattern
    matches the path or one of its parent folders; `**/` matches any number of folders."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            candidates = ["/".join(parts[start:end]) for end in range(1, len(parts) + 1)
                          for start in range(end)]  # fmt: skip
            if any(fnmatch.fnmatchcase(c, tail) for c in candidates):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def dockerignore(root: Path) -> list[str]:
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line.removeprefix("/").rstrip("/") for line in lines if line and line[0] != "#"]


def context_files(root: Path, sources: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Every file the COPY `sources` send from `root`, sorted, minus the ignored ones."""
    files: set[str] = set()
    for source in sources:
        top = root / source
        if not top.exists():
            raise ImagesError(f"{source}: COPY source missing in {root}")
        candidates = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in candidates:
            relative = path.relative_to(root).as_posix()
            if not ignored(relative, patterns):
                files.add(relative)
    return sorted(files)


def content_key(root: Path, image: Image, base_id: str) -> str:
    """Hash of the Dockerfile, every file it copies (path and bytes) and the base's ID."""
    dockerfile = (root / image.dockerfile).read_text(encoding="utf-8")
    digest = hashlib.sha256()
    digest.update(f"base {base_id}\ndockerfile {image.dockerfile}\n".encode())
    digest.update(dockerfile.encode())
    for relative in context_files(root, copied_sources(dockerfile), dockerignore(root)):
        digest.update(f"\nfile {relative}\n".encode())
        digest.update((root / relative).read_bytes())
    return digest.hexdigest()


def base_key(name: str, suite: str) -> str:
    recipe = {"recipe": BASE_RECIPE, "name": name, "suite": suite, "packages": BASE_PACKAGES,
              "env": BASE_ENV}  # fmt: skip
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
