"""Kubeflow Pipelines v2beta1 Pipeline and PipelineVersion, placed as the KFP compiler wrote them.

The compiled objects come from `pipelines/` (`make pipeline-compile`); the generator only puts
them in their namespace and adds the standard labels, so KFP's K8s-native API server picks them
up like any other object Argo CD syncs.
"""

from __future__ import annotations

import copy
from typing import Any

from platformgen.naming import Manifest, standard_labels
from platformgen.spec.model import PlatformSpec

PIPELINE_ROLE = "pipeline"


def build_pipeline(
    spec: PlatformSpec, name: str, documents: list[dict[str, Any]]
) -> list[Manifest]:
    """The compiled objects of pipeline `name`, namespaced and labelled."""
    namespace = spec.pipelines[name].namespace
    out = []
    for document in documents:
        m = copy.deepcopy(document)
        meta = m.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta["labels"] = {**meta.get("labels", {}), **standard_labels(spec, name, PIPELINE_ROLE)}
        out.append(m)
    return sorted(out, key=lambda m: str(m["kind"]))
