"""What kubeconform cannot see in Kubeflow Pipelines' objects (pipelines.kubeflow.org/v2beta1).

kubeconform validates Pipeline and PipelineVersion against the upstream CRDs vendored in
crds/kubeflow-pipelines/ (required fields, unknown fields), like every other kind. Those CRDs
leave the compiled pipeline free-form (`x-kubernetes-preserve-unknown-fields` on
`spec.pipelineSpec` and `spec.platformSpec`), so this module checks that content against the
messages the KFP API server decodes it into: PipelineSpec and PlatformSpec of
kfp-pipeline-spec. As upstream: `spec.pipelineSpec` is required, `spec.pipelineName` is not.
"""

from __future__ import annotations

from typing import Any

from platformgen.errors import ToolError

GROUP_VERSION = "pipelines.kubeflow.org/v2beta1"
KINDS = frozenset({"Pipeline", "PipelineVersion"})
IR_MESSAGES = (("pipelineSpec", "PipelineSpec"), ("platformSpec", "PlatformSpec"))
"""(spec field, kfp.pipeline_spec message) of the free-form fields of a PipelineVersion."""


def is_kfp_object(document: Any) -> bool:
    return isinstance(document, dict) and str(document.get("apiVersion", "")).startswith(
        "pipelines.kubeflow.org/"
    )


def check_kfp_object(document: dict[str, Any]) -> list[str]:
    """Problems with the pipeline IR inside one Pipeline or PipelineVersion (empty when valid).

    Each problem starts with `<kind> <name> (<apiVersion>)`, like kubeconform's."""
    try:
        from google.protobuf import json_format  # type: ignore[import-untyped]
        from kfp.pipeline_spec import pipeline_spec_pb2
    except ImportError as err:  # pragma: no cover - the venv always has kfp
        raise ToolError(f"kfp-pipeline-spec is not installed ({err}): run `make venv`") from err
    kind = document.get("kind")
    subject = f"{kind} {document.get('metadata', {}).get('name', '<unnamed>')} ({GROUP_VERSION})"
    if document.get("apiVersion") != GROUP_VERSION or kind not in KINDS:
        return [f"{subject}: unknown kind {document.get('apiVersion')}/{kind}"]
    if kind != "PipelineVersion":
        return []
    spec = document.get("spec") or {}
    problems = []
    if "pipelineSpec" not in spec:
        problems.append(f"{subject}: spec.pipelineSpec is required")
    for key, message in IR_MESSAGES:
        if key in spec:
            try:
                json_format.ParseDict(
                    spec[key], getattr(pipeline_spec_pb2, message)(), ignore_unknown_fields=False
                )
            except json_format.ParseError as err:
                problems.append(f"{subject}: spec.{key}: {err}")
    return problems
