"""Kubeflow Pipelines v2beta1 Pipeline and PipelineVersion, placed as the KFP compiler wrote them.

The compiled objects come from `pipelines/` (`make pipeline-compile`); the generator puts them
in their namespace, adds the standard labels, and sets each step's image to what the
environment pins (tag or digest), so every step runs the image the environment declares.

KFP's webhook refuses any change to an existing PipelineVersion's spec, so the version is
content-addressed: `<pipeline>-<10 digits of the hash of pipelineSpec and platformSpec>`
(naming.content_name). An unchanged pipeline keeps its name (a re-sync changes nothing); a
changed one (new steps, a new image pin) is a new PipelineVersion, and GitOps prune deletes
the previous one, so each environment keeps exactly one version: the one in git. The Pipeline
object itself is stable. Because its content depends on the environment's image pins, the
PipelineVersion is rendered whole into each overlay, never into base.
"""

from __future__ import annotations

import copy
from typing import Any

from platformgen.builders.network_policy import build_pipeline_runs_policy
from platformgen.naming import Manifest, content_name, image_repository, metadata, standard_labels
from platformgen.spec.effective import environment_image
from platformgen.spec.load import executor_containers
from platformgen.spec.model import PlatformSpec

PIPELINE_ROLE = "pipeline"


def pin_step_images(
    spec: PlatformSpec, name: str, pipeline_spec: dict[str, Any], environment: str | None
) -> dict[str, Any]:
    """`pipeline_spec` with every executor's image set to the environment's pin of its step
    (matched by image repository, as declared in `pipelines.<name>.steps`)."""
    pipeline = spec.pipelines[name]
    env = spec.environments[environment] if environment is not None else None
    pins = env.pipelines.get(name) if env is not None else None
    by_repository: dict[str, str] = {}
    for step, declared in pipeline.steps.items():
        pin = pins.steps.get(step) if pins is not None else None
        image = environment_image(spec, environment, step, declared.image, pin)
        # One image per repository: spec/images.py refuses two different pins at load.
        by_repository.setdefault(declared.image, image)
    out = copy.deepcopy(pipeline_spec)
    # Every executor's repository is a declared step's: spec.load.load_pipelines checks it.
    for _, container in executor_containers(out):
        container["image"] = by_repository[image_repository(str(container["image"]))]
    return out


def _version_spec(
    spec: PlatformSpec, name: str, document: dict[str, Any], environment: str
) -> dict[str, Any]:
    """The spec of pipeline `name`'s PipelineVersion in `environment` (step images pinned)."""
    body: dict[str, Any] = copy.deepcopy(document.get("spec", {}))
    body["pipelineName"] = name
    if "pipelineSpec" in body:
        body["pipelineSpec"] = pin_step_images(spec, name, body["pipelineSpec"], environment)
    return body


def _version_name(name: str, body: dict[str, Any]) -> str:
    return content_name(name, {k: body.get(k) for k in ("pipelineSpec", "platformSpec")})


def version_name(
    spec: PlatformSpec, name: str, documents: list[dict[str, Any]], environment: str
) -> str | None:
    """The name of the PipelineVersion pipeline `name` deploys in `environment` (None when
    its compiled documents have no PipelineVersion)."""
    for document in documents:
        if document.get("kind") == "PipelineVersion":
            return _version_name(name, _version_spec(spec, name, document, environment))
    return None


def build_pipeline(
    spec: PlatformSpec,
    name: str,
    documents: list[dict[str, Any]],
    environment: str | None = None,
) -> list[Manifest]:
    """The compiled objects of pipeline `name`, namespaced and labelled; the PipelineVersion
    (content-named, with the environment's step images) only for an environment."""
    namespace = spec.pipelines[name].namespace
    out = []
    for document in documents:
        m = copy.deepcopy(document)
        meta = m.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta["labels"] = {**meta.get("labels", {}), **standard_labels(spec, name, PIPELINE_ROLE)}
        if m.get("kind") == "PipelineVersion":
            if environment is None:
                continue
            m["spec"] = _version_spec(spec, name, document, environment)
            meta["name"] = _version_name(name, m["spec"])
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
