"""The drift recording rules, run by promtool, against the drift monitor's own PSI.

The PrometheusRule rendered for the drift monitor (overlays/prod) computes PSI from the per-bin
counters of every replica. Here promtool evaluates it on two replicas' counters and the test
compares the recorded PSI with `mlp_drift.core.psi_from_counts` on the summed counts: the rules
and the Python agree to 1e-9 (and a Python value off by 0.01 fails, so the comparison bites).
Broken rules prove the unit tests in tests/alerts/drift-monitor.yaml hold the design: summing per
replica (`by pod`) loses the two-replica alert, and dropping the minimum-sample guard fires on a
thin stream.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlp_drift.core import psi_from_counts

from ..e2e.kube import ROOT, kustomize_build, load_documents
from .test_alert_rules import RuleFiles, promtool, run_unit_tests, write_rules

pytestmark = [pytest.mark.tools, pytest.mark.parametrize("env", ["prod"], indirect=True)]

RULE = "drift-monitor"
PSI = "namespace_service_feature:mlp_drift_psi:increase1h"
TARGET = 'job="drift-monitor", endpoint="metrics", service="drift-monitor", namespace="ml-serving"'
PODS = ("drift-monitor-7d9f8b6c5-abcde", "drift-monitor-7d9f8b6c5-fghij")


@pytest.fixture(scope="module")
def rule_files(env: str) -> RuleFiles:
    documents = load_documents(kustomize_build(ROOT / "overlays" / env))
    return {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "PrometheusRule"}


def _case(
    feature: str, reference: list[int], replicas: list[list[int]], expected_psi: float
) -> dict[str, Any]:
    """A promtool case: each replica's counter per bin grows by its count every minute; the
    reference ratio gauges are exported by both; the recorded PSI must equal `expected_psi`."""
    series = []
    for index, (pod, counts) in enumerate(zip(PODS, replicas, strict=True)):
        labels = f'{TARGET}, instance="10.0.2.{index + 4}:8000", pod="{pod}", container="drift-monitor", feature="{feature}", reference_version="7"'  # noqa: E501
        for b, (count, ref) in enumerate(zip(counts, reference, strict=True)):
            series.append(
                {
                    "series": f'mlp_drift_feature_observations_total{{{labels}, bin="{b}"}}',
                    "values": f"0+{count}x120",
                }
            )
            series.append(
                {
                    "series": f'mlp_drift_reference_ratio{{{labels}, bin="{b}"}}',
                    "values": f"{ref / sum(reference)!r}x120",
                }
            )
    scope = f'namespace="ml-serving", service="drift-monitor", feature="{feature}"'
    return {
        "name": f"recorded PSI of {feature} equals the Python PSI",
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f"abs({PSI}{{{scope}}} - {expected_psi!r}) < bool 1e-9",
                "eval_time": "100m",
                "exp_samples": [{"labels": f'{{{scope}, reference_version="7"}}', "value": 1}],
            }
        ],
    }


def _agreement_cases(offset: float) -> list[dict[str, Any]]:
    rng = random.Random(11)
    cases = []
    for feature, bins in (("f0", 2), ("f1", 5), ("f2", 10)):
        reference = [rng.randrange(1, 200) for _ in range(bins)]
        replicas = [[rng.randrange(0, 8) for _ in range(bins)] for _ in PODS]
        replicas[0][0] = replicas[1][0] = 0  # an empty current bin: the epsilon floor counts
        replicas[1][-1] += 1  # at least one row
        summed = [a + b for a, b in zip(*replicas, strict=True)]
        cases.append(
            _case(feature, reference, replicas, psi_from_counts(reference, summed) + offset)
        )
    return cases


def _run(rules: RuleFiles, cases: list[dict[str, Any]], workdir: Path) -> Any:
    write_rules({RULE: rules[RULE]}, workdir)
    suite = {"rule_files": [f"{RULE}.rules.yaml"], "evaluation_interval": "1m", "tests": cases}
    (workdir / "agreement.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return promtool("test", "rules", "agreement.yaml", cwd=workdir)


def test_recorded_psi_equals_the_python_psi(rule_files: RuleFiles, tmp_path: Path) -> None:
    result = _run(rule_files, _agreement_cases(0.0), tmp_path)
    assert result.returncode == 0, f"promtool test rules:\n{result.stdout}{result.stderr}"


def test_a_different_psi_fails_the_comparison(rule_files: RuleFiles, tmp_path: Path) -> None:
    result = _run(rule_files, _agreement_cases(0.01), tmp_path)
    assert result.returncode != 0, "promtool accepted a PSI off by 0.01"
    output = result.stdout + result.stderr
    for feature in ("f0", "f1", "f2"):
        assert f'got: {{feature="{feature}"' in output, output


def _broken(rules: RuleFiles, old: str, new: str) -> RuleFiles:
    broken: RuleFiles = yaml.safe_load(yaml.safe_dump(rules))
    changed = 0
    for group in broken[RULE]["groups"]:
        for rule in group["rules"]:
            if old in rule["expr"]:
                rule["expr"] = rule["expr"].replace(old, new)
                changed += 1
    assert changed, f"no drift rule contains {old!r}"
    return broken


def test_per_replica_counts_lose_the_two_replica_alert(
    rule_files: RuleFiles, tmp_path: Path
) -> None:
    """Counts summed per pod (what a per-replica PSI amounts to) must fail the unit tests."""
    by = "namespace, service, feature, reference_version"
    broken = _broken(
        rule_files, f"sum by ({by}, bin) (increase(", f"sum by ({by}, bin, pod) (increase("
    )
    result = run_unit_tests(broken, tmp_path)
    assert result.returncode != 0, "per-replica drift passed the two-replica test"
    assert "DriftMonitorFeatureDrift" in result.stdout + result.stderr


def test_without_the_sample_guard_a_thin_stream_fires(
    rule_files: RuleFiles, tmp_path: Path
) -> None:
    broken = _broken(rule_files, " < 200\n", " < 0\n")
    result = run_unit_tests(broken, tmp_path)
    assert result.returncode != 0, "the thin-stream case passed without the guard"
    assert "DriftMonitorFeatureDrift" in result.stdout + result.stderr
