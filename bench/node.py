"""The platform on a real node (``make bench BENCH=node``; needs root, like ``make e2e-node``).

The dev environment brought up the way tests/e2e/test_node_platform.py does
(tests/e2e/node_platform.py: a control plane with its own node, the real KServe controller, the
images ``make images`` builds served from a registry on the node's veth, the model in moto's
S3), delivered with a server-side apply (``delivery="apply"``: what is measured is the
platform, not Argo CD, which delivers it in the test), then measured:

- **Bring-up**: the wall seconds of each stage (pipeline, images, node, controllers, apply, all
  pods Ready, teardown) on this run.
- **Model server start to Ready**: the predictor pod's ``creationTimestamp`` to its ``Ready``
  condition (the API server's clock, 1 s resolution): first on the fresh node (its image
  pulled through the registry), then after deleting the pod ``repeat`` times (the Deployment
  makes a new one; the image is on the node).
- **A new model version answering**: a new version registered in the S3 registry and promoted
  to ``production`` (what the pipeline's register step does; the spec keeps
  ``modelVersion: production``, so no manifest changes), until v2 through the Service's
  ClusterIP answers with the new version number. The model server polls the registry
  (``MLP_POLL_INTERVAL``, 30 s), so half that is expected on average, plus the download and
  the load.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import ROOT, Result


@dataclass
class Options:
    repeat: int


def _node_platform() -> Any:
    """tests/e2e/node_platform.py (the e2e package, with tests/ on the path as under pytest)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import e2e.node_platform

    return e2e.node_platform


def restart_to_ready(np: Any, running: Any) -> float:
    """Delete the model server's pod; the new one's start-to-Ready."""
    (old,) = np.predictor_pods(running)
    name = old["metadata"]["name"]
    namespace = old["metadata"]["namespace"]
    running.cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=false")
    found: list[float] = []

    def ready() -> str | None:
        for pod in np.predictor_pods(running):
            seconds = np.start_to_ready(pod)
            if pod["metadata"]["name"] != name and seconds is not None:
                found.append(seconds)
                return None
        return "the new model server pod is not Ready"

    running.cluster.wait_for("the new model server pod", ready, timeout=np.READY_TIMEOUT)
    return found[0]


def new_version_answers(np: Any, running: Any) -> tuple[int, float]:
    """Promote a new version in the S3 registry; seconds until v2 answers with it."""
    started = time.monotonic()
    version = np.promote_copy(running)

    def answering() -> str | None:
        _, v2 = np.predict(running, check=False)
        served = None if v2 is None else v2.get("model_version")
        return None if served == str(version) else f"serving version {served}"

    running.cluster.wait_for(f"version {version} to answer", answering, timeout=300)
    return version, time.monotonic() - started


def run(options: Options) -> Result:
    np = _node_platform()
    result = Result(
        name="node",
        title="The platform on a real node (make bench BENCH=node)",
        conditions=(
            "One control plane and one node on the shared 2-core machine (other sessions' "
            "clusters and builds run beside it); images already built and cached; "
            f"{options.repeat} model server restart(s) and version change(s)."
        ),
        settings={"repeat": options.repeat},
        plot={"title": "Model server and model version", "x": "run", "y": "s",
              "metric": "wall_s", "bar": True},
    )  # fmt: skip
    stages: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(group: str, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            stages[f"{group} {name}"] = time.monotonic() - started

    with (
        tempfile.TemporaryDirectory(prefix="bench-node-") as directory,
        np.running_platform(Path(directory), phase) as running,
    ):
        (pod,) = np.predictor_pods(running)
        first = np.start_to_ready(pod)
        assert first is not None
        result.add("model server", "start to Ready (first, image pulled)", 0, "wall_s", "s",
                   [first])  # fmt: skip
        restarts = [restart_to_ready(np, running) for _ in range(options.repeat)]
        result.add("model server", "start to Ready (restart, image on the node)", 0, "wall_s",
                   "s", restarts)  # fmt: skip
        changes = [new_version_answers(np, running) for _ in range(options.repeat)]
        result.add("model version", "promoted in S3 to answering through the ClusterIP", 0,
                   "wall_s", "s", [seconds for _, seconds in changes])  # fmt: skip
        ready = running.timings["platform_ready_seconds"]
        result.add("bring-up", "apply to every pod Ready", 0, "wall_s", "s", [ready])
    for stage, seconds in stages.items():
        result.add("bring-up stages", stage, 0, "wall_s", "s", [seconds])
    result.notes.append(
        "The version change is bounded by the model server's registry poll "
        "(MLP_POLL_INTERVAL, 30 s by default): a shorter interval trades S3 requests for "
        "a faster switch. The first start-to-Ready includes pulling the image through the "
        "registry (its layers were imported into containerd first)."
    )
    return result
