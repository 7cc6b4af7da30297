#!/usr/bin/env python3
"""`make demo`: build, render, validate, train and serve the platform, one line per step.

The terminal gets one line per step (group, name, status, wall seconds, a short result), a
"still running" line on long steps (on a terminal, one line updated in place instead), and a
summary at the end: objects per kind and environment, validation, the model's metrics, the gate
decision, the registered version and a served prediction with its latency. Each step's full
output goes to ``.run/demo/<UTC time>/<step>.log`` (``.run/demo/latest`` links the newest); the
pipeline's tasks each get ``pipeline/<task>.log`` as well. ``-v`` (``make demo VERBOSE=1``)
prints the full logs too.

On failure: exit 1, the failing step named, and the tail of its log.

Standard library only: it runs with the system Python, because its first step builds the venv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_console import (  # noqa: E402
    ROOT,
    Console,
    PipelineTasks,
    Step,
    StepResult,
    _elapsed,
    run_steps,
    shown,
)
from demo_summary import Results, summary_lines  # noqa: E402

# --- the demo -------------------------------------------------------------------------------------


def _count_lines(log: Path) -> str:
    files = [line for line in log.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return f"{len(files)} generated files"


def demo_steps(run: Path, make: str) -> list[Step]:
    venv = ROOT / ".venv" / "bin"
    registry = ROOT / ".run" / "registry"

    def validated(_log: Path) -> str:
        report = json.loads((run / "validate.json").read_text(encoding="utf-8"))
        valid = sum(1 for t in report["targets"] if t["ok"])
        argocd = "ok" if report["argocd"]["ok"] else "FAILED"
        return f"{valid} of {len(report['targets'])} builds valid, Argo CD {argocd}"

    return [
        Step("setup", "venv", [make, "--no-print-directory", "venv"]),
        Step("setup", "tools", [make, "--no-print-directory", "tools"]),
        Step("platform", "render", [str(venv / "platformgen"), "render"], detail=_count_lines),
        Step(
            "platform",
            "validate",
            [str(venv / "platformgen"), "validate", "--report", str(run / "validate.json")],
            detail=validated,
        ),
        Step(
            "ml",
            "pipeline",
            [
                str(venv / "mlp-pipeline"),
                "run",
                "--runs",
                str(ROOT / ".run" / "pipeline"),
                "--registry",
                str(registry),
                "--datasets",
                str(ROOT / ".run" / "datasets"),
                "--summary-json",
                str(run / "pipeline.json"),
            ],
            watcher=lambda directory, console: PipelineTasks(directory, console),
        ),  # fmt: skip
    ]


def serve_step(run: Path, pipeline: dict[str, Any]) -> Step:
    version = (pipeline.get("version") or {}).get("version", "latest")
    return Step(
        "serve",
        "smoke",
        [
            str(ROOT / ".venv" / "bin" / "python"), "-m", "mlp_serve.smoke",
            "--registry", str(ROOT / ".run" / "registry"), "--version", str(version),
        ],
        detail=_smoke_detail,
    )  # fmt: skip


def _smoke_detail(log: Path) -> str:
    served = _served(log) or {}
    return (
        f"v1 and v2 both predict {served.get('v1_prediction')}, "
        f"v1 request {served.get('v1_latency_ms')} ms"
    )


def _served(log: Path) -> dict[str, Any] | None:
    for line in reversed(log.read_text(encoding="utf-8").splitlines()):
        if line.startswith("{"):
            document: dict[str, Any] = json.loads(line)
            return document
    return None


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print the full logs too")
    parser.add_argument("--make", default=os.environ.get("MAKE", "make"), help="make to run")
    args = parser.parse_args(argv)
    console = Console(stream or sys.stdout, args.verbose)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run = ROOT / ".run" / "demo" / stamp
    run.mkdir(parents=True, exist_ok=True)
    latest = run.parent / "latest"  # .run/demo/latest: the newest run's logs
    latest.unlink(missing_ok=True)
    latest.symlink_to(stamp, target_is_directory=True)
    env = {  # what the Makefile exports, for a run without make
        "PATH": os.pathsep.join(
            [str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]
        ),
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
    }
    console.line(
        f"make demo: full logs in {shown(run)}/"
        + ("" if args.verbose else " (VERBOSE=1 prints them too)")
    )
    started = time.monotonic()
    results = Results()

    def after(step: Step, result: StepResult) -> None:
        if step.name == "validate":
            results.validation = json.loads((run / "validate.json").read_text(encoding="utf-8"))
        elif step.name == "pipeline":
            results.pipeline = json.loads((run / "pipeline.json").read_text(encoding="utf-8"))
        elif step.name == "smoke":
            results.served = _served(result.log)

    try:
        steps = [*demo_steps(run, args.make)]
        for step in steps:
            step.env = {**env, **step.env}
        results.steps = run_steps(steps, run, console, after)
        if results.steps[-1].ok and results.pipeline is not None:
            serve = serve_step(run, results.pipeline)
            serve.env = {**env, **serve.env}
            results.steps += run_steps([serve], run, console, after)
    except KeyboardInterrupt:
        console.line("interrupted")
        return 130
    ok = all(r.ok for r in results.steps)
    if ok:
        console.line()
        for line in summary_lines(results):
            console.line(line)
    elapsed = _elapsed(time.monotonic() - started)
    console.line(
        f"{'ok' if ok else 'FAILED'} in {elapsed}; full logs in {shown(run)}/"
        + ("" if ok else f" (the failing step: {shown(results.steps[-1].log)})")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
