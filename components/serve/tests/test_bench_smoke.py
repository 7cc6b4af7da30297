"""A one-repetition smoke of the serving benchmark (``python -m bench run serving --smoke``).

It runs our server and KServe's constant-model ceiling under wrk, pinned, for one second per
concurrency. No speed is asserted: `make bench` measures; this proves the harness works.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from mlp_common.registry import ModelRegistry

from .conftest import MODEL, register
from support import unavailable

ROOT = Path(__file__).resolve().parents[3]
BENCH_TOOLS = ("wrk", "taskset")


def _bench_tools() -> None:
    """wrk and taskset on PATH: installed by scripts/install-bench-tools.sh (what `make
    bench-tools` runs) when missing; if that cannot install them, `unavailable` fails in CI and
    skips only outside it."""
    if all(shutil.which(tool) for tool in BENCH_TOOLS):
        return
    done = subprocess.run(
        [str(ROOT / "scripts" / "install-bench-tools.sh")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    missing = [tool for tool in BENCH_TOOLS if shutil.which(tool) is None]
    if missing:
        unavailable(
            f"missing {', '.join(missing)}; scripts/install-bench-tools.sh exited "
            f"{done.returncode}: {done.stderr.strip()[-500:]}"
        )


def test_serving_benchmark_smoke(tmp_path: Path, model_dirs: dict[int, Path]) -> None:
    _bench_tools()
    registry = ModelRegistry(tmp_path / "registry")
    register(registry, model_dirs[1])
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "serving", "--smoke",
         "--registry", str(registry.root), "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((results / "serving.json").read_text())
    assert result["settings"]["model"] == MODEL
    got = {(m["series"], m["x"], m["metric"]): m for m in result["measurements"]}
    for server in ("ours", "kserve-constant"):
        for connections in (1, 8):
            assert got[(server, connections, "req_per_s")]["median"] > 0
            assert got[(server, connections, "errors")]["median"] == 0
            assert got[(server, connections, "p99_ms")]["median"] > 0
    names = [t["name"] for t in result["targets"]]
    assert len(names) == 3 and all(t["unit"] == "x" for t in result["targets"]), names
