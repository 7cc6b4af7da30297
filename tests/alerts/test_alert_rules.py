"""Alert rules: promtool checks every rendered PrometheusRule and runs its unit tests.

For every environment, each PrometheusRule's `spec` (a Prometheus rule file) is written to
<name>.rules.yaml next to a copy of tests/alerts/<name>.yaml, then:
  - `promtool check rules` accepts every rule file;
  - `promtool test rules` passes every unit test;
  - every rendered alert has a case that fires and one that stays quiet, and no unit test
    names an alert that is no longer rendered.
Broken inputs prove the gate fails: an unparsable expression (tests/fixtures/broken/) fails
`check rules`, and an alert whose comparison is flipped fails its unit tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..e2e.kube import ROOT, TOOLS_BIN, environments, kustomize_build, load_documents, require_tools

pytestmark = pytest.mark.tools

TESTS_DIR = Path(__file__).resolve().parent
BROKEN = ROOT / "tests" / "fixtures" / "broken"

RuleFiles = dict[str, dict[str, Any]]  # PrometheusRule name -> rule file (its spec)


@pytest.fixture(scope="session")
def rule_files(env: str) -> RuleFiles:
    documents = load_documents(kustomize_build(ROOT / "overlays" / env))
    rules = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "PrometheusRule"}
    assert rules, f"overlays/{env} renders no PrometheusRule"
    return rules


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    require_tools("promtool")
    return subprocess.run(
        [str(TOOLS_BIN / "promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def write_rules(rules: RuleFiles, workdir: Path) -> list[str]:
    names = []
    for name, spec in sorted(rules.items()):
        path = workdir / f"{name}.rules.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        names.append(path.name)
    return names


def unit_test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.yaml"))


def run_unit_tests(rules: RuleFiles, workdir: Path) -> subprocess.CompletedProcess[str]:
    write_rules(rules, workdir)
    copies = []
    for test_file in unit_test_files():
        shutil.copy(test_file, workdir / test_file.name)
        copies.append(test_file.name)
    return promtool("test", "rules", *copies, cwd=workdir)


def alerts(rules: RuleFiles) -> dict[str, str]:
    """Alert name -> PrometheusRule name."""
    return {
        rule["alert"]: name
        for name, spec in rules.items()
        for group in spec["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_check_rules(rule_files: RuleFiles, tmp_path: Path) -> None:
    result = promtool("check", "rules", *write_rules(rule_files, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, f"promtool check rules:\n{result.stdout}{result.stderr}"


def test_unit_tests_pass(rule_files: RuleFiles, tmp_path: Path) -> None:
    result = run_unit_tests(rule_files, tmp_path)
    assert result.returncode == 0, f"promtool test rules:\n{result.stdout}{result.stderr}"


def test_every_alert_has_a_firing_and_a_quiet_case(rule_files: RuleFiles) -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    rule_names: set[str] = set()
    for test_file in unit_test_files():
        suite = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        rule_names.update(Path(f).name.removesuffix(".rules.yaml") for f in suite["rule_files"])
        for case in suite["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    rendered = alerts(rule_files)
    problems = [f"{a} ({r}): no firing case" for a, r in rendered.items() if a not in firing]
    problems += [f"{a} ({r}): no quiet case" for a, r in rendered.items() if a not in quiet]
    problems += [f"{a}: tested but not rendered" for a in sorted((firing | quiet) - set(rendered))]
    problems += [
        f"PrometheusRule {r}: no tests/alerts/{r}.yaml"
        for r in sorted(set(rule_files) - rule_names)
    ]
    assert not problems, "alert unit tests are incomplete:\n" + "\n".join(sorted(problems))


def test_unparsable_expression_fails_check(tmp_path: Path) -> None:
    """tests/fixtures/broken/prometheus-rule-bad-expression.yaml is rejected by check rules."""
    broken = yaml.safe_load((BROKEN / "prometheus-rule-bad-expression.yaml").read_text())
    (tmp_path / "broken.rules.yaml").write_text(yaml.safe_dump(broken["spec"]), encoding="utf-8")
    result = promtool("check", "rules", "broken.rules.yaml", cwd=tmp_path)
    assert result.returncode != 0, "promtool accepted an unparsable alert expression"
    assert "parse error" in result.stdout + result.stderr


@pytest.mark.parametrize("env", environments()[:1], indirect=True)
def test_flipped_comparison_fails_unit_tests(rule_files: RuleFiles, tmp_path: Path) -> None:
    """Flip the last comparison of one alert (`>` to `<`): its firing test must fail."""
    broken = yaml.safe_load(yaml.safe_dump(rule_files))
    target = None
    for spec in broken.values():
        for group in spec["groups"]:
            for rule in group["rules"]:
                flipped = re.sub(r">(?=[^<>]*$)", "<", rule.get("expr", ""), count=1)
                if "alert" in rule and flipped != rule["expr"] and target is None:
                    rule["expr"], target = flipped, rule["alert"]
    assert target is not None, "no alert with a `>` comparison to flip"
    result = run_unit_tests(broken, tmp_path)
    assert result.returncode != 0, f"unit tests passed although {target}'s expression is wrong"
    assert target in result.stdout + result.stderr
