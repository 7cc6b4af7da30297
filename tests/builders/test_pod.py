"""Shared pod helpers: the policy-exception annotations, and the waivers the builders record
beside the objects that carry them."""

from __future__ import annotations

import dataclasses
from typing import Any

from platformgen.builders import build_component, build_component_waived
from platformgen.resolve import resolve
from platformgen.spec.load import load_spec
from platformgen.waivers import exception_annotations

from support import ROOT


def test_exception_annotations_number_checkov_and_list_kube_score_ids() -> None:
    exceptions = sorted(
        [
            ("checkov", "CKV_K8S_35", "secrets come by reference"),
            ("checkov", "CKV_K8S_8", "queue-proxy=readiness only"),
            ("kube-linter", "job-ttl-seconds-after-finished", "content-named"),
            ("kube-score", "deployment-has-poddisruptionbudget", "dev is disposable"),
            ("kube-score", "pod-probes", "a batch pod"),
        ]
    )
    assert exception_annotations(exceptions) == {
        "checkov.io/skip1": "CKV_K8S_35=secrets come by reference",
        "checkov.io/skip2": "CKV_K8S_8=queue-proxy=readiness only",
        "ignore-check.kube-linter.io/job-ttl-seconds-after-finished": "content-named",
        "kube-score/ignore": "deployment-has-poddisruptionbudget,pod-probes",
        "kube-score.platformgen.io/deployment-has-poddisruptionbudget": "dev is disposable",
        "kube-score.platformgen.io/pod-probes": "a batch pod",
    }


def test_the_recorded_waivers_are_the_ones_written_on_the_object() -> None:
    """Every component of the repo's spec, in every environment: the objects the builders say
    carry waivers are the objects the component's own waivers reach, and their annotations
    write exactly the recorded waivers."""
    spec = load_spec(ROOT / "platform.yaml")
    probe = ("checkov", "CKV_PLATFORMGEN_PROBE", "a waiver no spec declares")
    seen = 0
    for environment in sorted(spec.environments):
        for view in resolve(spec, environment):
            objects, carried = build_component_waived(view)
            assert objects == build_component(view)
            probed = dataclasses.replace(
                view, environment_exceptions=(*view.environment_exceptions, probe)
            )
            reached = [m for m in build_component(probed) if m not in objects]
            assert sorted(m["metadata"]["name"] + m["kind"] for m, _ in carried) == sorted(
                m["metadata"]["name"] + m["kind"] for m in reached
            ), view.name
            for m, waivers in carried:
                written = exception_annotations(waivers)
                annotations = m["metadata"].get("annotations", {})
                assert {k: annotations[k] for k in written} == written
                seen += bool(waivers)
    assert seen


def _containers(obj: object) -> list[dict[str, Any]]:
    """Every mapping under ``obj`` that has a probe (pod containers, ISVC predictors)."""
    found: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        if any(k in obj for k in ("livenessProbe", "readinessProbe", "startupProbe")):
            found.append(obj)
        for value in obj.values():
            found += _containers(value)
    elif isinstance(obj, list):
        for value in obj:
            found += _containers(value)
    return found


def test_probes_name_the_port_by_number_and_it_is_a_container_port() -> None:
    """KServe's agent and Knative's queue-proxy rebuild a probe as a URL and cannot resolve a
    port name (on the real node the model server stayed 1/2 Ready on ``invalid port ":http"``),
    so every probe carries the number of one of its container's ports."""
    spec = load_spec(ROOT / "platform.yaml")
    probed = 0
    for environment in sorted(spec.environments):
        for view in resolve(spec, environment):
            for obj in build_component(view):
                for c in _containers(obj):
                    ports = {p["containerPort"] for p in c.get("ports", [])}
                    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                        if kind in c:
                            probe = c[kind]
                            action = probe.get("httpGet") or probe["tcpSocket"]
                            assert action["port"] in ports, (view.name, kind, action)
                            probed += 1
    assert probed
