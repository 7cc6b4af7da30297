#!/usr/bin/env python3
"""`make demo-cluster`: the platform on a real Kubernetes node, one line per step.

Sets up the venv and the pinned tools (control plane, node, controllers, registry,
Prometheus, Argo CD), builds the images, then (scripts/demo_cluster_run.py, what
tests/e2e/test_node_platform.py runs) trains the model locally, renders the dev environment
into a Git repository, starts a control plane with its own node, loads the images, starts
KServe's controller, Argo CD, the stand-ins and Prometheus, has Argo CD sync the dev
ApplicationSet, waits for every pod to be Ready and for Argo CD's health of every Application,
prints each Application's sync and health, asks the model server through its ClusterIP and
tears it all down. `KEEP=1` (`--keep`) keeps the
cluster up until Ctrl-C and prints its kubeconfig.

Logs go to ``.run/demo-cluster/<UTC time>/`` (``latest`` links the newest), one per step and
one per stage of the cluster part. Needs root (a node: network namespaces, cgroups, mounts).
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
    MarkedSteps,
    Step,
    StepResult,
    _elapsed,
    run_steps,
    shown,
)

TOOLS = ("tools", "cluster-tools", "node-tools", "controllers-tools", "registry-tools",
         "prometheus-tools", "argocd-tools")  # fmt: skip


def cluster_steps(run: Path, make: str, keep: bool) -> list[Step]:
    python = str(ROOT / ".venv" / "bin" / "python")
    child = [python, str(ROOT / "scripts" / "demo_cluster_run.py"), "--work", str(run / "work")]
    return [
        Step("setup", "venv", [make, "--no-print-directory", "venv"]),
        Step("setup", "tools", [make, "--no-print-directory", *TOOLS]),
        Step("images", "images", [make, "--no-print-directory", "images"]),
        Step(
            "cluster",
            "platform",
            [*child, *(["--keep"] if keep else [])],
            watcher=lambda directory, console: MarkedSteps(directory, console),
        ),
    ]


def answer(log: Path) -> dict[str, Any] | None:
    """The last JSON line of the cluster step's log (scripts/demo_cluster_run.py)."""
    if not log.is_file():
        return None
    for line in reversed(log.read_text(encoding="utf-8").splitlines()):
        if line.startswith("{"):
            document: dict[str, Any] = json.loads(line)
            return document
    return None


def summary(served: dict[str, Any]) -> list[str]:
    applications = [
        f"  argocd     {app['name']:<27} {app['sync']} {app['health']}"
        + (f" ({', '.join(app['not_healthy'])}: not reconciled here)" if app["not_healthy"] else "")
        for app in served.get("applications", [])
    ]
    return [
        *applications,
        f"  served     model {served['model']} version {served['version']} at {served['service']}",
        f"  answer     v1 {served['v1_prediction']}, v2 {served['v2_prediction']} "
        f"(the local run: {served['expected']})",
        "  teardown   done: the node, the control plane, the controllers, Argo CD and the registry"
        " stopped",
    ]


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo_cluster.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the full logs too")
    parser.add_argument("--keep", action="store_true", help="keep the cluster up until Ctrl-C")
    parser.add_argument("--make", default=os.environ.get("MAKE", "make"), help="make to run")
    args = parser.parse_args(argv)
    console = Console(stream or sys.stdout, args.verbose)
    if os.geteuid() != 0:
        console.line("make demo-cluster: needs root (a node: network namespaces, cgroups)")
        return 1
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run = ROOT / ".run" / "demo-cluster" / stamp
    run.mkdir(parents=True, exist_ok=True)
    latest = run.parent / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(stamp, target_is_directory=True)
    env = {
        "PATH": os.pathsep.join(
            [str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]
        ),
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
    }
    console.line(
        f"make demo-cluster: full logs in {shown(run)}/"
        + ("" if args.verbose else " (VERBOSE=1 prints them too)")
    )
    started = time.monotonic()
    steps = cluster_steps(run, args.make, args.keep)
    for step in steps:
        step.env = {**env, **step.env}
    results: list[StepResult] = []
    try:
        results = run_steps(steps, run, console)
    except KeyboardInterrupt:
        console.line("interrupted (the cluster part tears down on its way out)")
        return 130
    ok = len(results) == len(steps) and all(r.ok for r in results)
    served = answer(run / "platform.log") if ok else None
    if served is not None:
        console.line()
        for line in summary(served):
            console.line(line)
    elapsed = _elapsed(time.monotonic() - started)
    console.line(
        f"{'ok' if ok else 'FAILED'} in {elapsed}; full logs in {shown(run)}/"
        + ("" if ok else f" (the failing step: {shown(results[-1].log)})" if results else "")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
