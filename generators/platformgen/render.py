"""spec -> every generated file. Pure: no disk, env or clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from platformgen.build import build
from platformgen.builders import Documents
from platformgen.emit.argocd import emit_argocd
from platformgen.emit.dockerfile import emit_dockerfiles, rendered_here
from platformgen.emit.helm import emit_helm
from platformgen.emit.kustomize import emit_kustomize
from platformgen.spec.model import PlatformSpec

GENERATED_ROOTS: tuple[str, ...] = ("base", "overlays", "charts", "argocd")
"""Folders platformgen owns entirely: replaced whole on render, compared whole on check."""
SCATTERED: dict[str, Callable[[str, str], bool]] = {"Dockerfile": rendered_here}
"""Generated files that live beside hand-written ones, outside GENERATED_ROOTS: by file name,
whether a file found at a path (with its first bytes) is one platformgen rendered there."""


def render(spec: PlatformSpec, pipelines: Documents | None = None) -> dict[str, str]:
    """`{path relative to the repo root: file text}` for every generated file, sorted: the
    platform built once (build.build), then every emitter over that one build.

    `pipelines` holds the compiled KFP objects of `spec.pipelines` (spec.load.load_pipelines).
    """
    built = build(spec, pipelines)
    files = emit_kustomize(built)
    files.update(emit_helm(built))
    files.update(emit_argocd(built))
    files.update(emit_dockerfiles(spec))
    return dict(sorted(files.items()))


def generated_roots(files: Iterable[str], orphans: Iterable[str] = ()) -> tuple[str, ...]:
    """What render replaces and check compares: GENERATED_ROOTS, each rendered file outside
    them (a Dockerfile in its component's folder), and `orphans`, generated files on disk that
    the spec no longer renders (so check reports them and render removes them)."""
    scattered = {p for p in files if p.split("/", 1)[0] not in GENERATED_ROOTS}
    return (*GENERATED_ROOTS, *sorted(scattered | set(orphans)))
