"""What the InferenceService serves (builders.inference_service): the typed `model` and the
environment's `model.version` and `canary` become the predictor's MLP_MODEL/MLP_MODEL_VERSION,
KServe's canaryTrafficPercent and the rollout annotations."""

from __future__ import annotations

from typing import Any

from platformgen.builders import build_platform
from platformgen.builders.inference_service import (
    CANARY_MODEL_ANNOTATION,
    STABLE_MODEL_ANNOTATION,
)
from platformgen.spec.load import load_spec
from platformgen.spec.model import PlatformSpec

from support import ROOT, SPECS


def served(spec: PlatformSpec, env: str | None) -> dict[str, Any]:
    (isvc,) = [m for m in build_platform(spec, env)["predictor"] if m["kind"] == "InferenceService"]
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    values = {e["name"]: e.get("value") for e in container["env"]}
    annotations = isvc["metadata"].get("annotations", {})
    return {
        "model": values.get("MLP_MODEL"),
        "version": values.get("MLP_MODEL_VERSION"),
        "canaryTrafficPercent": predictor.get("canaryTrafficPercent"),
        "stable": annotations.get(STABLE_MODEL_ANNOTATION),
        "canary": annotations.get(CANARY_MODEL_ANNOTATION),
    }


def test_base_follows_the_production_pointer() -> None:
    spec = load_spec(SPECS / "full.yaml")
    assert served(spec, None) == {
        "model": "wine",
        "version": "production",
        "canaryTrafficPercent": None,
        "stable": None,
        "canary": None,
    }


def test_a_canary_pins_the_candidate_and_names_both_versions() -> None:
    """The revision rendered now serves the canary's version to its share; the stable version
    is KServe's previously rolled-out revision, named by the annotation."""
    spec = load_spec(SPECS / "full.yaml")
    assert served(spec, "prod") == {
        "model": "wine",
        "version": "4",
        "canaryTrafficPercent": 20,
        "stable": "wine version 3",
        "canary": "wine version 4 takes 20% of requests",
    }


def test_without_a_canary_the_predictor_pins_the_stable_version() -> None:
    spec = load_spec(SPECS / "full.yaml")
    prod = spec.environments["prod"]
    override = prod.components["predictor"].model_copy(update={"canary": None})
    components = {**prod.components, "predictor": override}
    environments = {
        **spec.environments,
        "prod": prod.model_copy(update={"components": components}),
    }
    spec = spec.model_copy(update={"environments": environments})
    assert served(spec, "prod") == {
        "model": "wine",
        "version": "3",
        "canaryTrafficPercent": None,
        "stable": "wine version 3",
        "canary": None,
    }


def test_clients_reach_the_port_kserve_sends_traffic_to() -> None:
    """Knative: the queue-proxy; Standard with a payload logger: KServe's agent sidecar (its
    Service targets the agent, found on a real node: tests/e2e/test_node_platform.py);
    Standard without one: the predictor's own port."""
    from platformgen.builders.inference_service import AGENT_PORT, QUEUE_PROXY_PORT, serving_ports

    spec = load_spec(ROOT / "platform.yaml")
    server = spec.components["model-server"]
    assert server.payload_logger is not None
    assert serving_ports(server) == [(QUEUE_PROXY_PORT, "TCP")]
    standard = server.model_copy(update={"deployment_mode": "Standard"})
    assert serving_ports(standard) == [(AGENT_PORT, "TCP")]
    unlogged = standard.model_copy(update={"payload_logger": None})
    assert serving_ports(unlogged) == [(p.port, p.protocol) for p in server.ports]
