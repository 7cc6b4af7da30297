"""Security gates on the rendered output of every environment, with pinned tools:
checkov (kubernetes; dockerfile over components/), kube-linter and kube-score, plus a secrets
scan of the repository history with gitleaks.

The goal is zero findings. A check may only be skipped by an annotation the generator emits
on the object, with a written reason; no gate is configured with skips on the command line.
Deliberately broken fixtures (tests/fixtures/broken/) prove each gate fails.
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..e2e.kube import ROOT, TOOLS_BIN, Manifest, load_documents, require_tools

pytestmark = pytest.mark.tools

BROKEN = ROOT / "tests" / "fixtures" / "broken"
KUBE_LINTER_IGNORE = "ignore-check.kube-linter.io/"
CHECKOV_SKIP = "checkov.io/skip"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "kube-score.platformgen.io/"


def run(
    tool: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    require_tools(tool)
    return subprocess.run(
        [str(TOOLS_BIN / tool), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


# --- checkov -----------------------------------------------------------------------------


def checkov(*args: str) -> dict[str, Any]:
    """Run checkov (no network: BC_SKIP_MAPPING, --skip-download) and return its results."""
    result = run(
        "checkov",
        *args,
        "--output",
        "json",
        "--skip-download",
        env={"BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
    )
    assert result.returncode in (0, 1), f"checkov crashed:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    merged: dict[str, list[Any]] = {"failed_checks": [], "skipped_checks": [], "passed_checks": []}
    for item in reports:
        for key in merged:
            merged[key] += item.get("results", {}).get(key, [])
    return merged


def checkov_failures(results: dict[str, Any]) -> list[str]:
    return sorted(
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in results["failed_checks"]
    )


def unexplained_checkov_skips(results: dict[str, Any]) -> list[str]:
    unexplained = []
    for c in results["skipped_checks"]:
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        if not reason.strip() or reason.strip() == "No comment provided":
            unexplained.append(f"{c['check_id']} on {c['resource']}")
    return sorted(unexplained)


def test_checkov_kubernetes(rendered_file: Path) -> None:
    results = checkov("--framework", "kubernetes", "--file", str(rendered_file))
    assert results["passed_checks"], "checkov checked nothing"
    assert not checkov_failures(results), "checkov failed:\n" + "\n".join(checkov_failures(results))
    assert not unexplained_checkov_skips(results), unexplained_checkov_skips(results)


def test_checkov_dockerfiles() -> None:
    """Every Dockerfile in the repository (components and pipelines)."""
    listed = subprocess.run(
        ["git", "ls-files", "--", "*Dockerfile*"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    dockerfiles = [ROOT / path for path in listed if (ROOT / path).is_file()]
    assert dockerfiles, "no Dockerfile in the repository to scan"
    files = [arg for path in dockerfiles for arg in ("--file", str(path))]
    results = checkov("--framework", "dockerfile", *files)
    assert results["passed_checks"], "checkov checked nothing"
    assert not checkov_failures(results), "checkov failed:\n" + "\n".join(checkov_failures(results))
    assert not unexplained_checkov_skips(results), unexplained_checkov_skips(results)


# --- kube-linter -------------------------------------------------------------------------


def kube_linter(path: Path) -> list[str]:
    """kube-linter's default checks; returns one line per finding."""
    result = run("kube-linter", "lint", "--format", "json", str(path))
    assert result.returncode in (0, 1), f"kube-linter crashed:\n{result.stderr}"
    report = json.loads(result.stdout)
    return sorted(
        f"{r['Check']}: {r['Object']['K8sObject']['GroupVersionKind']['Kind']} "
        f"{r['Object']['K8sObject']['Namespace']}/{r['Object']['K8sObject']['Name']}: "
        f"{r['Diagnostic']['Message']}"
        for r in report.get("Reports") or []
    )


def test_kube_linter(rendered_file: Path) -> None:
    findings = kube_linter(rendered_file)
    assert not findings, "kube-linter:\n" + "\n".join(findings)


# --- kube-score --------------------------------------------------------------------------

# kube-score grades: 1 critical, 5 warning, 7 almost ok, 10 ok.
KUBE_SCORE_FAILING = {1: "CRITICAL", 5: "WARNING"}


def kube_score(path: Path) -> list[str]:
    result = run("kube-score", "score", "--output-format", "json", str(path))
    assert result.returncode in (0, 1), f"kube-score crashed:\n{result.stderr}"
    findings = []
    for obj in json.loads(result.stdout):
        meta = obj["object_meta"]
        who = f"{obj['type_meta']['kind']} {meta.get('namespace', '')}/{meta['name']}"
        for check in obj["checks"]:
            if check.get("skipped") or check["grade"] not in KUBE_SCORE_FAILING:
                continue
            comments = "; ".join(
                f"{c.get('summary', '')} {c.get('description', '')}".strip()
                for c in check.get("comments") or []
            )
            findings.append(
                f"{KUBE_SCORE_FAILING[check['grade']]} {check['check']['id']}: {who}: {comments}"
            )
    return sorted(findings)


def test_kube_score(rendered_file: Path) -> None:
    findings = kube_score(rendered_file)
    assert not findings, "kube-score:\n" + "\n".join(findings)


# --- skips carry reasons -----------------------------------------------------------------


def unexplained_skips(documents: list[Manifest]) -> list[str]:
    """Skip annotations without a written reason, for all three tools:
    checkov.io/skipN: CKV_ID=<reason>; ignore-check.kube-linter.io/<check>: <reason>;
    kube-score/ignore: <ids> with kube-score.platformgen.io/<id>: <reason> for each id
    (kube-score's own annotation holds only ids)."""
    problems = []
    for doc in documents:
        meta = doc.get("metadata", {})
        found = {k: str(v) for k, v in (meta.get("annotations") or {}).items()}
        who = f"{doc['kind']} {meta.get('namespace', '')}/{meta.get('name')}"
        for key, value in found.items():
            if re.fullmatch(r"checkov\.io/skip\d+", key):
                check, _, reason = value.partition("=")
                if not check.strip() or not reason.strip():
                    problems.append(f"{who}: {key}: {value!r} (want CKV_ID=<reason>)")
            elif key.startswith(KUBE_LINTER_IGNORE) and not value.strip():
                problems.append(f"{who}: {key} has no reason")
        ignored = (c.strip() for c in found.get(KUBE_SCORE_IGNORE, "").split(","))
        for check in filter(None, ignored):
            reason_key = f"{KUBE_SCORE_REASON}{check}"
            if not found.get(reason_key, "").strip():
                problems.append(f"{who}: kube-score check {check} ignored without {reason_key}")
    return sorted(problems)


def test_every_skip_has_a_reason(rendered: str) -> None:
    problems = unexplained_skips(load_documents(rendered))
    assert not problems, "skips without a written reason:\n" + "\n".join(problems)


def test_skip_without_reason_is_caught() -> None:
    text = (BROKEN / "skips-without-reasons.yaml").read_text(encoding="utf-8")
    problems = "\n".join(unexplained_skips(load_documents(text)))
    assert "checkov.io/skip1" in problems
    assert "ignore-check.kube-linter.io/no-anti-affinity has no reason" in problems
    assert "kube-score check deployment-replicas ignored" in problems


# --- secrets -----------------------------------------------------------------------------


def gitleaks(*args: str, report: Path) -> list[dict[str, Any]]:
    result = run(
        "gitleaks",
        *args,
        "--no-banner",
        "--redact",
        "--report-format",
        "json",
        "--report-path",
        str(report),
        "--exit-code",
        "0",
    )
    assert result.returncode == 0, f"gitleaks failed:\n{result.stderr}"
    findings: list[dict[str, Any]] = json.loads(report.read_text() or "[]")
    return findings


def test_no_secrets_in_git_history(tmp_path: Path) -> None:
    """Every commit of the repository, scanned with gitleaks' default rules."""
    findings = gitleaks("git", str(ROOT), report=tmp_path / "report.json")
    assert not findings, "gitleaks found secrets:\n" + "\n".join(
        f"{f['RuleID']}: {f['File']}:{f['StartLine']} (commit {f['Commit'][:10]})" for f in findings
    )


# --- the gates fail on broken input ------------------------------------------------------


def test_missing_limit_is_caught_by_kube_linter() -> None:
    findings = kube_linter(BROKEN / "missing-limit-deployment.yaml")
    assert any(f.startswith("unset-memory-requirements:") for f in findings), findings


def test_planted_secret_is_caught_by_gitleaks(tmp_path: Path) -> None:
    # Built at run time so the repository itself never contains a token-shaped string.
    rng = random.Random(3)
    token = "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    planted = tmp_path / "tree"
    planted.mkdir()
    (planted / "settings.env").write_text(f"GITHUB_TOKEN={token}\n", encoding="utf-8")
    findings = gitleaks("dir", str(planted), report=tmp_path / "report.json")
    assert findings, "gitleaks missed a planted GitHub token"
