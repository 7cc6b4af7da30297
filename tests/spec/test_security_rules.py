"""The security rules are general classes: every member of a class is refused, not the examples.

The CLI refusals (exit 1, the path, nothing written) are the `security-*` fixtures under
tests/fixtures/invalid/ (tests/spec/test_load.py). Here each class is swept whole, through
`parse_spec`: every controller namespace, every case and whitespace variant of every escalating
RBAC token, every resource a controller turns into pods, every Unicode format character, every
system folder; and the facts the bounds rest on are checked against their sources (the serving
histogram, the PSI floor, promtool).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

from platformgen.builders import prometheus_rule
from platformgen.builders.inference_service import KNATIVE_ACTIVATOR
from platformgen.builders.network_policy import DNS_NAMESPACE
from platformgen.cli import main
from platformgen.errors import SpecError
from platformgen.kinds import CONTROLLERS, KINDS
from platformgen.spec import alert_thresholds
from platformgen.spec.durations import MAX_DURATION
from platformgen.spec.load import parse_spec
from platformgen.spec.rbac import ESCALATING_VERBS, ESCALATIONS, KUBERNETES_VERBS, POD_WRITERS
from platformgen.spec.security import SYSTEM_PATHS, reserved_reason

from support import SPECS, tool

MINIMAL = (SPECS / "minimal.yaml").read_text()


def spec_with(**top: object) -> str:
    """minimal.yaml with top-level keys replaced (or added)."""
    data = yaml.safe_load(MINIMAL)
    data.update(top)
    return escaped(data)


def echo_with(**fields: object) -> str:
    """minimal.yaml with fields of its one component replaced (or added)."""
    data = yaml.safe_load(MINIMAL)
    data["components"]["echo"].update(fields)
    return escaped(data)


def escaped(data: object) -> str:
    """`data` as YAML with every non-ASCII character escaped (`\\uXXXX`, `\\UXXXXXXXX`), so
    that none is folded as a line break (NEL) or split into surrogates: JSON, with YAML's
    escape for characters beyond the Basic Multilingual Plane."""

    def astral(pair: re.Match[str]) -> str:
        high, low = int(pair[1], 16), int(pair[2], 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    return re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", astral, json.dumps(data))


def problems(text: str) -> list[str]:
    try:
        parse_spec(text)
    except SpecError as err:
        return err.problems
    return []


CONTROLLER_NAMESPACES = sorted({ns for row in CONTROLLERS.values() for ns in row.namespaces})


@pytest.mark.parametrize("namespace", CONTROLLER_NAMESPACES)
def test_every_controller_namespace_is_reserved_without_an_endpoint(namespace: str) -> None:
    data = yaml.safe_load(MINIMAL)
    data["namespaces"][namespace] = {}
    found = problems(yaml.safe_dump(data))
    assert any(f": namespaces.{namespace}: namespace {namespace!r} is reserved" in p for p in found)
    tenants = {"tenants": {namespace: {"owners": {"users": ["alice"]}}}}
    found = problems(spec_with(tenancy=tenants))
    assert any(f": tenancy.tenants.{namespace}: tenant namespace {namespace!r}" in p for p in found)


def test_the_namespaces_generated_policies_name_as_infrastructure_are_reserved() -> None:
    spec = parse_spec(MINIMAL)
    for namespace in (DNS_NAMESPACE, KNATIVE_ACTIVATOR[0]):
        assert reserved_reason(spec, namespace) is not None, namespace


OWN_NAMESPACE_CASES = [
    *(("default", "kube-system", "kube-flannel")),
    *(ns for ns in CONTROLLER_NAMESPACES if ns not in ("argocd", "monitoring")),
]


@pytest.mark.parametrize("namespace", OWN_NAMESPACE_CASES)
def test_argo_cd_and_prometheus_never_live_in_another_role_s_namespace(namespace: str) -> None:
    gitops = {"repoURL": "https://git.example.com/x.git", "namespace": namespace}
    found = problems(spec_with(gitops=gitops, monitoring={"prometheusNamespace": namespace}))
    assert any(": gitops.namespace: " in p for p in found), found
    assert any(": monitoring.prometheusNamespace: " in p for p in found), found


def test_argo_cd_and_prometheus_keep_their_own_namespaces() -> None:
    gitops = {"repoURL": "https://git.example.com/x.git", "namespace": "argocd"}
    assert (
        problems(spec_with(gitops=gitops, monitoring={"prometheusNamespace": "monitoring"})) == []
    )


def rule(**fields: object) -> dict[str, object]:
    return {
        "namespace": "apps",
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get"],
    } | (fields)


def variants(token: str) -> list[str]:
    """Spellings RBAC does not match as `token`: case changes and surrounding whitespace."""
    spelled = {token.upper(), token.capitalize(), token.swapcase(), f" {token}", f"{token} "}
    spelled |= {f"{token}\t", f"\u00a0{token}"}
    return sorted(spelled - {token})


ESCALATING_RESOURCES = sorted(
    {
        (group, resource)
        for groups, resources, _, _ in ESCALATIONS
        for group in groups
        for resource in resources
    }
)


@pytest.mark.parametrize("verb", sorted(KUBERNETES_VERBS))
def test_every_variant_of_a_kubernetes_verb_is_malformed(verb: str) -> None:
    for spelled in variants(verb):
        found = problems(echo_with(rbac=[rule(verbs=[spelled])]))
        assert any(".rbac[0].verbs[0]: " in p and "canonical form" in p for p in found), spelled


@pytest.mark.parametrize(("group", "resource"), ESCALATING_RESOURCES)
def test_every_variant_of_an_escalating_resource_and_group_is_malformed(
    group: str, resource: str
) -> None:
    for spelled in variants(resource):
        found = problems(echo_with(rbac=[rule(apiGroups=[group], resources=[spelled])]))
        assert any(".rbac[0].resources[0]: " in p for p in found), spelled
    for spelled in variants(group) if group else [" ", "\t"]:
        found = problems(echo_with(rbac=[rule(apiGroups=[spelled], resources=[resource])]))
        assert any(".rbac[0].apiGroups[0]: " in p for p in found), spelled


def test_custom_verbs_of_aggregated_apis_are_taken_as_written() -> None:
    kfp = rule(apiGroups=["pipelines.kubeflow.org"], resources=["runs"], verbs=["readArtifact"])
    assert problems(echo_with(rbac=[kfp])) == []


@pytest.mark.parametrize("verb", sorted(ESCALATING_VERBS))
def test_escalating_verbs_need_an_exception(verb: str) -> None:
    found = problems(echo_with(rbac=[rule(verbs=[verb])]))
    assert any(f"{verb!r} lets the holder exceed" in p for p in found)


POD_RESOURCES = sorted(
    (group, resource)
    for groups, resources, _, _ in POD_WRITERS
    for group in groups
    for resource in resources
)


@pytest.mark.parametrize(("group", "resource"), POD_RESOURCES)
def test_writing_any_object_a_controller_turns_into_pods_needs_an_exception(
    group: str, resource: str
) -> None:
    for verb in ("create", "patch", "update"):
        grant = rule(apiGroups=[group], resources=[resource], verbs=[verb, "get"])
        found = problems(echo_with(rbac=[grant]))
        assert any(f"{verb} {resource}: makes " in p and "create pods" in p for p in found), found
        excepted = grant | {"exception": "states why this component starts these workloads"}
        assert problems(echo_with(rbac=[excepted])) == []
    reader = rule(apiGroups=[group], resources=[resource], verbs=["get", "list", "watch"])
    assert problems(echo_with(rbac=[reader])) == []


def test_every_workload_kind_whose_pods_a_controller_creates_is_a_pod_writer() -> None:
    for kind, traits in KINDS.items():
        if traits.pods_created_by is None:
            continue
        assert traits.api_version is not None
        group = traits.api_version.rpartition("/")[0]
        assert (group, f"{kind.lower()}s") in POD_RESOURCES, kind


FORMAT_CHARACTERS = [
    chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"
]
CONTROL_CHARACTERS = [
    chr(c) for c in range(0x100) if unicodedata.category(chr(c)) == "Cc" and chr(c) not in "\t\n\r"
]


def test_every_control_and_format_character_is_refused_in_every_string() -> None:
    characters = [*FORMAT_CHARACTERS, *CONTROL_CHARACTERS, "\u2028", "\u2029", "\ud804"]
    endpoints = {
        f"e{i}": {"cidr": "203.0.113.0/24", "description": f"a{ch}b"}
        for i, ch in enumerate(characters)
    }
    env = {f"V{i}": f"a{ch}b" for i, ch in enumerate(characters)}  # multi-line text
    data = yaml.safe_load(echo_with(env=env))
    data["endpoints"] = endpoints
    found = problems(escaped(data))
    for i, ch in enumerate(characters):
        what = {"Cf": "format", "Cs": "surrogate"}.get(unicodedata.category(ch), "control")
        for path in (f"endpoints.e{i}.description", f"components.echo.env.V{i}"):
            assert any(f": {path}: " in p and f"{what} characters" in p for p in found), (
                path,
                hex(ord(ch)),
            )


@pytest.mark.parametrize("value", ["{{workflow.uid}}", "}}", "a{{b", "{{inputs.parameters.x}}"])
def test_pipeline_parameter_defaults_refuse_argo_templates(value: str) -> None:
    pipelines = {
        "training": {
            "namespace": "apps",
            "compiled": "pipelines/compiled/mlp-training.k8s.yaml",
            "steps": {"train": {"image": "registry.example.com/mlp/train-python"}},
            "promotion": {"idColumn": value},
        }
    }
    found = problems(spec_with(pipelines=pipelines))
    assert any(": pipelines.training.promotion.idColumn: " in p and "Argo" in p for p in found)


SYSTEM_CASES = sorted({"/", "/var", *SYSTEM_PATHS, *(f"{p}/app" for p in SYSTEM_PATHS)})


@pytest.mark.parametrize("path", SYSTEM_CASES)
def test_no_writable_volume_over_the_system(path: str) -> None:
    found = problems(echo_with(writablePaths=[path]))
    assert any(
        ": components.echo.writablePaths[0]: " in p and "hides the system" in p for p in found
    )


@pytest.mark.parametrize("path", ["/tmp/", "/cache//models", "/a/./b", "/srv/x/"])
def test_writable_paths_are_normalised(path: str) -> None:
    found = problems(echo_with(writablePaths=[path]))
    assert any(": components.echo.writablePaths[0]: " in p for p in found), found


@pytest.mark.parametrize("path", ["/tmp", "/var/cache/echo", "/var/lib/echo", "/home/app", "/data"])
def test_application_folders_stay_writable(path: str) -> None:
    assert problems(echo_with(writablePaths=[path])) == []


def test_the_latency_bounds_are_the_serving_histogram_s_buckets() -> None:
    from mlp_serve.metrics import LATENCY  # noqa: PLC0415 - the serving component's histogram

    finite = [b for b in LATENCY._upper_bounds if math.isfinite(b)]  # noqa: SLF001
    assert alert_thresholds.LATENCY_BUCKETS == (finite[0], finite[-1])
    assert LATENCY._name == prometheus_rule.REQUEST_DURATION  # noqa: SLF001


def test_the_psi_bound_is_the_largest_psi_the_rules_compute() -> None:
    assert alert_thresholds.PSI_EPSILON == prometheus_rule.PSI_EPSILON
    eps = alert_thresholds.PSI_EPSILON

    def psi(p: list[float], q: list[float]) -> float:
        return sum(
            (max(a, eps) - max(b, eps)) * math.log(max(a, eps) / max(b, eps))
            for a, b in zip(p, q, strict=True)
        )

    assert psi([1, 0, 0], [0, 0, 1]) == pytest.approx(alert_thresholds.MAX_PSI)
    assert psi([0.6, 0.4, 0], [0, 0.3, 0.7]) < alert_thresholds.MAX_PSI


ALERTS_AT_THE_BOUNDS = {
    "errorRatio": alert_thresholds.MIN_ERROR_RATIO,
    "latencyP99Seconds": alert_thresholds.LATENCY_BUCKETS[0],
    "modelAgeHours": alert_thresholds.MAX_ALERT_HOURS,
    "for": MAX_DURATION,
    "window": MAX_DURATION,
}


def test_the_bounds_render_rules_promtool_accepts(tmp_path: Path) -> None:
    """At the bounds (a year-long `for` and window, a threshold of 1e-06 in exponent form), the
    PrometheusRule still passes `promtool check rules`; one step past the largest duration
    Prometheus parses (293y) it does not, which is what the bound keeps out."""
    promtool = tool("promtool")
    drift = {
        "kind": "Deployment",
        "namespace": "apps",
        "role": "monitoring",
        "image": "registry.example.com/tiny/drift",
        "ports": [{"name": "metrics", "port": 8000}],
        "metrics": {"port": "metrics", "interval": MAX_DURATION},
        "alerts": {"driftPsi": alert_thresholds.MIN_PSI, "driftWindow": MAX_DURATION},
    }
    data = yaml.safe_load(echo_with(metrics={"port": "http"}, alerts=ALERTS_AT_THE_BOUNDS))
    data["components"]["drift"] = drift
    spec = tmp_path / "platform.yaml"
    spec.write_text(yaml.safe_dump(data))
    assert main(["render", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 0
    rules = sorted((tmp_path / "out" / "base").glob("*/prometheus-rule.yaml"))
    assert len(rules) == 2
    texts = {
        path.parent.name: yaml.safe_dump(
            {"groups": yaml.safe_load(path.read_text())["spec"]["groups"]}
        )
        for path in rules
    }
    assert "> 1e-06" in texts["echo"]
    assert f"for: {MAX_DURATION}" in texts["echo"]
    texts["past-the-range"] = texts["echo"].replace(f"for: {MAX_DURATION}", "for: 293y")
    for name, text in texts.items():
        checked = tmp_path / f"{name}.yaml"
        checked.write_text(text)
        run = subprocess.run(
            [str(promtool), "check", "rules", str(checked)],
            capture_output=True,
            text=True,
            check=False,
        )
        if name == "past-the-range":
            assert run.returncode != 0
            assert "duration out of range" in run.stdout + run.stderr
        else:
            assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("value", ["1y1ms", "53w", "366d", "8785h", "99999999999y"])
def test_durations_past_a_year_are_refused(value: str) -> None:
    found = problems(
        echo_with(
            ports=[{"name": "http", "port": 8080}], metrics={"port": "http", "interval": value}
        )
    )
    assert any(": components.echo.metrics.interval: " in p and "at most 1y" in p for p in found), (
        found
    )
