"""The cluster part of `make demo-cluster` (run by scripts/demo_cluster.py with the venv's Python,
as root): bring the dev platform up on a control plane with a real node, delivered by Argo CD
from a Git repository of the rendered spec copy (tests/e2e/node_platform.py, what
tests/e2e/test_node_platform.py runs), print what Argo CD reports of each Application, ask the
model server through its ClusterIP, print the answer, tear everything down.

Each stage prints `==> <group> <name>` when it starts and `<== <group> <name> ok|FAILED
[detail]` when it ends (scripts/demo_console.py `MarkedSteps` turns them into one line each).
The last line is the answer and the Applications as JSON. `--keep` keeps the cluster up until
Ctrl-C (its kubeconfig is printed); teardown follows either way, and an interrupted run tears
down too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
DETAILS: dict[tuple[str, str], str] = {}
"""The short result of a stage, set by the stage itself (printed on its `<==` line)."""


def phase_printer(stream: TextIO) -> Any:
    """`phase(group, name)` for tests/e2e/node_platform.py: the stage's markers on `stream`."""

    @contextlib.contextmanager
    def phase(group: str, name: str) -> Iterator[None]:
        stream.write(f"==> {group} {name}\n")
        stream.flush()
        try:
            yield
        except BaseException as error:
            message = str(error).splitlines()[0][:80] if str(error) else type(error).__name__
            stream.write(f"<== {group} {name} FAILED {message}\n")
            stream.flush()
            raise
        detail = DETAILS.pop((group, name), "")
        stream.write(f"<== {group} {name} ok{' ' + detail if detail else ''}\n")
        stream.flush()

    return phase


def answer(node_platform: Any, running: Any) -> dict[str, Any]:
    """v1 and v2 through the model server's ClusterIP, with what the local run predicted."""
    v1, v2 = node_platform.predict(running)
    return {
        "model": running.expected["model"],
        "version": v1.get("model_version"),
        "v1_prediction": v1["predictions"][0],
        "v2_prediction": node_platform.label(v2),
        "expected": running.expected["v1_prediction"],
        "service": "{name}-predictor.{namespace}.svc.cluster.local".format(
            **node_platform.isvc(running.documents)["metadata"]
        ),
    }


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="state, logs, the cluster")
    parser.add_argument("--keep", action="store_true", help="keep it running until Ctrl-C")
    args = parser.parse_args(argv)
    out = stream or sys.stdout
    sys.path.insert(0, str(ROOT / "tests"))
    import e2e.node_argocd as node_argocd
    import e2e.node_platform as node_platform

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # teardown on SIGTERM too
    phase = phase_printer(out)
    args.work.mkdir(parents=True, exist_ok=True)
    with node_platform.running_platform(args.work, phase, delivery="argocd") as running:
        with phase("argocd", "applications"):
            apps = node_argocd.report(running.delivery)
            DETAILS[("argocd", "applications")] = node_argocd.summary(apps)
        with phase("serve", "answer"):
            served = answer(node_platform, running)
            DETAILS[("serve", "answer")] = (
                f"v1 and v2 both predict {served['v1_prediction']} through the ClusterIP"
                if served["v1_prediction"] == served["v2_prediction"]
                else f"v1 {served['v1_prediction']}, v2 {served['v2_prediction']}"
            )
            if served["v1_prediction"] != served["expected"]:
                raise AssertionError(f"the cluster answered {served}, the local run did not")
        if args.keep:
            out.write(f"KUBECONFIG={running.cluster.kubeconfig}; Ctrl-C tears it down\n")
            out.flush()
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    out.write(json.dumps({**served, "applications": apps}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
