"""Kubeflow Pipelines v2beta1 Pipeline and PipelineVersion, placed as the KFP compiler wrote them.

The compiled objects come from `pipelines/` (`make pipeline-compile`); the generator only puts
them in their namespace and adds the standard labels, so KFP's K8s-native API server picks them
up like any other object Argo CD syncs.
"""

from __future__ import annotations

import copy
from typing import Any

from platformgen.builders.network_policy import build_pipeline_runs_policy
from platformgen.naming import Manifest, metadata, standard_labels
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
    for map_name, data in sorted(spec.pipelines[name].config_maps.items()):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata(spec, map_name, PIPELINE_ROLE, namespace),
                "data": dict(sorted(data.items())),
            }
        )
    runs = build_pipeline_runs_policy(spec, name)
    if runs is not None:
        out.append(runs)
    return sorted(out, key=lambda m: (str(m["kind"]), str(m["metadata"]["name"])))
