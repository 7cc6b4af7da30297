"""Validation of Kubeflow Pipelines' K8s-native objects (pipelines.kubeflow.org/v2beta1).

The CRDs for these kinds are not obtainable here (the Go module proxy refuses
github.com/kubeflow/pipelines), so kubeconform has no schema for them. Rather than skipping
them, `platformgen validate` checks them against the upstream definition that *is* available:
the PipelineSpec/PlatformSpec protobuf messages of kfp-pipeline-spec (the same messages the KFP
API server decodes `spec.pipelineSpec` into), plus the object envelope the KFP compiler writes
(kfp/compiler/pipeline_spec_builder.py).
"""

from __future__ import annotations

from typing import Any

from platformgen.errors import ToolError

GROUP_VERSION = "pipelines.kubeflow.org/v2beta1"
METADATA_KEYS = frozenset({"name", "namespace", "labels", "annotations"})
SPEC_KEYS = {
    "Pipeline": frozenset({"description", "displayName"}),
    "PipelineVersion": frozenset(
        {
            "codeSourceURL",
            "description",
            "displayName",
            "pipelineName",
            "pipelineSpec",
            "pipelineSpecURI",
            "platformSpec",
        }
    ),
}


def is_kfp_object(document: Any) -> bool:
    return isinstance(document, dict) and str(document.get("apiVersion", "")).startswith(
        "pipelines.kubeflow.org/"
    )


def check_kfp_object(document: dict[str, Any]) -> list[str]:
    """Problems with one Pipeline or PipelineVersion (empty when valid)."""
    try:
        from google.protobuf import json_format  # type: ignore[import-untyped]
        from kfp.pipeline_spec import pipeline_spec_pb2  # type: ignore[import-untyped]
    except ImportError as err:  # pragma: no cover - the venv always has kfp
        raise ToolError(f"kfp-pipeline-spec is not installed ({err}): run `make venv`") from err
    kind = document.get("kind")
    subject = f"{kind} {document.get('metadata', {}).get('name', '<unnamed>')} ({GROUP_VERSION})"
    if document.get("apiVersion") != GROUP_VERSION or kind not in SPEC_KEYS:
        return [f"{subject}: unknown kind {document.get('apiVersion')}/{kind}"]
    problems = []
    extra = set(document) - {"apiVersion", "kind", "metadata", "spec"}
    if extra:
        problems.append(f"{subject}: unknown fields {sorted(extra)}")
    metadata = document.get("metadata") or {}
    if not metadata.get("name"):
        problems.append(f"{subject}: metadata.name is required")
    if set(metadata) - METADATA_KEYS:
        problems.append(
            f"{subject}: unexpected metadata fields {sorted(set(metadata) - METADATA_KEYS)}"
        )
    spec = document.get("spec") or {}
    unknown = set(spec) - SPEC_KEYS[kind]
    if unknown:
        problems.append(f"{subject}: unknown spec fields {sorted(unknown)}")
    if kind == "PipelineVersion":
        if not spec.get("pipelineName"):
            problems.append(f"{subject}: spec.pipelineName is required")
        if "pipelineSpec" not in spec and "pipelineSpecURI" not in spec:
            problems.append(f"{subject}: spec.pipelineSpec is required")
        for key, message in (
            ("pipelineSpec", pipeline_spec_pb2.PipelineSpec),
            ("platformSpec", pipeline_spec_pb2.PlatformSpec),
        ):
            if key in spec:
                try:
                    json_format.ParseDict(spec[key], message(), ignore_unknown_fields=False)
                except json_format.ParseError as err:
                    problems.append(f"{subject}: spec.{key}: {err}")
    return problems
