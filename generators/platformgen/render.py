"""spec -> every generated file. Pure: no disk, env or clock."""

from __future__ import annotations

from platformgen.builders import Documents
from platformgen.emit.argocd import emit_argocd
from platformgen.emit.helm import emit_helm
from platformgen.emit.kustomize import emit_kustomize
from platformgen.resolve import collector_paused, memoized
from platformgen.spec.model import PlatformSpec

GENERATED_ROOTS: tuple[str, ...] = ("base", "overlays", "charts", "argocd")
"""Folders platformgen owns entirely: replaced whole on render, compared whole on check."""


def render(spec: PlatformSpec, pipelines: Documents | None = None) -> dict[str, str]:
    """`{path relative to the repo root: file text}` for every generated file, sorted.

    `pipelines` holds the compiled KFP objects of `spec.pipelines` (spec.load.load_pipelines).
    """
    with collector_paused(), memoized():
        files = emit_kustomize(spec, pipelines)
        files.update(emit_helm(spec, pipelines))
        files.update(emit_argocd(spec, pipelines))
    return dict(sorted(files.items()))
