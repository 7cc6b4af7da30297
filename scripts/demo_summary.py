"""The summary `make demo` prints at the end (pure): objects per kind and environment,
validation, the model's metrics, the gate decision, the registered version and a served
prediction with its latency. Standard library only."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo_console import WIDTH, StepResult, shown

KUSTOMIZE_TARGET = re.compile(r"^(base|overlays/(?P<env>[\w-]+))$")
CHART_TARGET = re.compile(r"^\S+ (?P<env>[\w-]+), (?P<helm>Helm \d+)$")
"""`platformgen validate` names chart targets `charts/<name> <env>, Helm <major>`."""


@dataclass
class Results:
    """What the steps produced, for the summary. Missing parts are left out of it."""

    steps: list[StepResult] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    """`platformgen validate --report` JSON."""
    pipeline: dict[str, Any] | None = None
    """`mlp-pipeline run --summary-json` JSON."""
    served: dict[str, Any] | None = None
    """The JSON line `python -m mlp_serve.smoke` prints."""


def _wrap(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"  {label:<12}",
        subsequent_indent=" " * 14,
        break_on_hyphens=False,
    )


def objects_table(kinds_by_env: dict[str, dict[str, int]]) -> list[str]:
    """Objects per kind per environment, the kinds in two side-by-side halves."""
    envs = sorted(kinds_by_env)
    kinds = sorted({kind for counts in kinds_by_env.values() for kind in counts})
    if not kinds:
        return []
    name = max(len(k) for k in ["objects", *kinds])
    widths = {e: max(4, len(e)) for e in envs}

    def row(label: str, counts: dict[str, Any]) -> str:
        return f"{label:<{name}}  " + " ".join(f"{counts[e]:>{widths[e]}}" for e in envs)

    def cell(kind: str) -> str:
        return row(kind, {e: kinds_by_env[e].get(kind, 0) for e in envs})

    header = row("objects", {e: e for e in envs})
    half = (len(kinds) + 1) // 2
    left, right = kinds[:half], kinds[half:]
    lines = [f"  {header}    {header}" if right else f"  {header}"]
    for index, kind in enumerate(left):
        other = f"    {cell(right[index])}" if index < len(right) else ""
        lines.append(f"  {cell(kind)}{other}")
    lines.append("  " + row("total", {e: sum(kinds_by_env[e].values()) for e in envs}))
    return lines


def validation_lines(report: dict[str, Any]) -> list[str]:
    targets = report.get("targets", [])
    valid = sum(1 for t in targets if t.get("ok"))
    objects = sum(int(t.get("resources", 0)) for t in targets)
    versions = sorted({str(t["kubernetes_version"]) for t in targets})
    kustomize: dict[str, None] = {}
    chart_envs: dict[str, None] = {}
    helms: dict[str, None] = {}
    for target in targets:
        match = KUSTOMIZE_TARGET.match(target["target"])
        chart = CHART_TARGET.match(target["target"])
        if match:
            kustomize[match.group("env") or "base"] = None
        elif chart:
            chart_envs[chart.group("env")] = None
            helms[chart.group("helm")] = None
    what = f"{valid} of {len(targets)} builds valid ({objects} objects): kustomize "
    what += ", ".join(kustomize)
    if chart_envs:
        what += f" and the Helm chart ({', '.join(chart_envs)}; {', '.join(helms)})"
    what += f", each through kubeconform -strict for Kubernetes {' and '.join(versions)}"
    lines = _wrap("validation", what)
    argocd = report.get("argocd") or {}
    if argocd:
        status = "ok" if argocd.get("ok") else "FAILED"
        lines += _wrap("", f"Argo CD {status}: {argocd['summary'].removeprefix('argocd/: ')}")
    for target in targets:
        if not target.get("ok"):
            lines += _wrap("", f"FAILED {target['target']} k8s {target['kubernetes_version']}")
    return lines


def metric_lines(metrics: dict[str, Any], per_line: int = 2) -> list[str]:
    """Metrics in aligned columns, `per_line` to a line."""
    width = max([len(name) for name in metrics] or [0])
    cells = [f"{name:<{width}} {_number(value):>7}" for name, value in sorted(metrics.items())]
    rows = [cells[i : i + per_line] for i in range(0, len(cells), per_line)]
    return [
        f"  {'metrics' if index == 0 else '':<12}" + "   ".join(row)
        for index, row in enumerate(rows)
    ]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def model_lines(pipeline: dict[str, Any]) -> list[str]:
    version = pipeline.get("version")
    if not version:
        return _wrap("model", f"no version: {pipeline.get('error') or 'the run registered none'}")
    model, number = version["model"], version["version"]
    run_id = version.get("pipeline_run_id")
    if pipeline.get("reused"):
        how = f"reused: trained earlier by pipeline run {run_id} on the same data, params and "
        how += "code; nothing was trained"
    else:
        how = f"trained now by pipeline run {run_id}"
    metrics = version.get("metrics", {})
    gate = version.get("gate", {})
    gate_text = f"{gate.get('verdict', gate.get('decision', '-'))}: {gate.get('reason', '')}"
    if pipeline.get("reused"):
        gate_text += f" (decided when version {number} was trained)"
    lines = _wrap("model", f"{model} version {number}, {how}")
    lines += metric_lines(metrics)
    lines += _wrap("gate", gate_text)
    production = pipeline.get("production")
    lines += _wrap(
        "registered",
        f"{model} version {number} (parent: {version.get('parent') or 'none'}) in "
        f"{shown(Path(version.get('path', '?')))}; "
        f"production: {'none' if production is None else f'version {production}'}",
    )
    return lines


def served_lines(served: dict[str, Any]) -> list[str]:
    probabilities = served.get("probabilities") or []
    label = served.get("v1_prediction")
    confidence = f" (probability {max(probabilities):.3f})" if probabilities else ""
    agree = "v2 agrees" if served.get("v2_prediction") == label else "v2 DISAGREES"
    return _wrap(
        "served",
        f"{served.get('model')} version {served.get('version')} predicts {label}{confidence} "
        f"for the mean training row, {agree}; v1 request {served.get('v1_latency_ms')} ms",
    )


def summary_lines(results: Results) -> list[str]:
    """The summary printed after the steps (everything known so far, in a fixed order)."""
    lines = ["summary"]
    validation = results.validation or {}
    kinds: dict[str, dict[str, int]] = {}
    for target in validation.get("targets", []):
        match = KUSTOMIZE_TARGET.match(target["target"])
        if match and match.group("env"):
            kinds.setdefault(match.group("env"), target.get("kinds", {}))
    lines += objects_table(kinds)
    if validation:
        lines += validation_lines(validation)
    if results.pipeline is not None:
        lines += model_lines(results.pipeline)
    if results.served is not None:
        lines += served_lines(results.served)
    return lines
