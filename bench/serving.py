"""Serving under load: our server against KServe's own ceiling and the stock custom models.

Four servers answer the same v1 request (one row of training means) on 127.0.0.1:

- ``ours``: ``python -m mlp_serve`` (micro-batching, lean path), default settings;
- ``kserve-constant``: a KServe ``ModelServer`` whose model returns a constant (the ceiling);
- ``kserve-keras``: a stock KServe custom model calling the Keras model per request;
- ``kserve-predict``: the same with ``model.predict`` per request (KServe docs' style).

Load comes from Debian's ``wrk`` (one thread, keep-alive connections, a Lua body script whose
``done`` hook prints the summary as JSON) at each concurrency for ``--duration`` seconds.

Two placements, each with fresh servers so they size their pools for what they see:

- ``pinned``: every server process on CPU 0 (``taskset -c 0``), wrk on CPU 1;
- ``unpinned``: no affinity for either, as a pod without a cpuset shares the node.

Each repetition visits every (concurrency, server) pair once, and the server order rotates
between repetitions, so slow drifts of a shared machine hit every server alike. Targets compare
``ours`` with ``kserve-constant`` at the highest concurrency, per repetition (paired), then take
the median of those ratios.

Besides wall-clock figures, each run records the server's CPU time per request (user + system
of all its threads, from ``/proc/<pid>/stat``). On a shared, noisy machine req/s mostly
measures the scheduler; CPU per request is what a quiet core would turn into req/s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import ROOT, Result, Target, tool_version

SERVERS = ("ours", "kserve-constant", "kserve-keras", "kserve-predict")
CEILING = "kserve-constant"
OURS = "ours"

LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_SUMMARY {{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Options:
    registry: Path
    model: str | None
    version: str
    concurrency: tuple[int, ...]
    duration: float
    repeat: int
    servers: tuple[str, ...]
    placements: tuple[str, ...]
    warmup: float
    partial: Path | None = None  # results folder to write after each placement


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def _command(name: str, port: int, model_dir: Path, model: str, options: Options) -> list[str]:
    if name == OURS:
        return [
            sys.executable, "-m", "mlp_serve",
            "--registry", str(options.registry), "--model", model,
            "--version", options.version, "--port", str(port), "--poll-interval", "0",
        ]  # fmt: skip
    kind = name.removeprefix("kserve-")
    return [
        sys.executable, str(ROOT / "bench" / "serving_baselines.py"),
        "--kind", kind, "--model-dir", str(model_dir), "--name", model, "--port", str(port),
    ]  # fmt: skip


def _ready(port: int, model: str) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{model}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def servers(
    names: Sequence[str], model_dir: Path, model: str, options: Options, pin: str | None, tmp: Path
) -> Iterator[dict[str, Running]]:
    running: dict[str, Running] = {}
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # Let the first start cache bytecode, so later starts do not compile TensorFlow again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        for name in names:
            port = _free_port()
            argv = _command(name, port, model_dir, model, options)
            if pin is not None:
                argv = ["taskset", "-c", pin, *argv]
            log = tmp / f"{name}.log"
            with log.open("wb") as handle:
                process = subprocess.Popen(
                    argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT
                )
            running[name] = Running(name, port, process, log)
        deadline = time.monotonic() + 900  # TensorFlow start-up on a loaded machine is slow
        for server in running.values():
            while not _ready(server.port, model):
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{server.name} did not start:\n{server.log.read_text()[-3000:]}"
                    )
                time.sleep(0.3)
        yield running
    finally:
        for server in running.values():
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in running.values():
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, script: Path, connections: int, duration: float, pin: str | None
) -> dict[str, Any]:
    argv = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
        "-s", str(script), url,
    ]  # fmt: skip
    if pin is not None:
        argv = ["taskset", "-c", pin, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_SUMMARY "):
            summary: dict[str, Any] = json.loads(line.removeprefix("WRK_SUMMARY "))
            seconds = summary["duration_us"] / 1e6
            summary["req_per_s"] = summary["requests"] / seconds if seconds else 0.0
            summary["errors"] = sum(
                summary[k] for k in ("connect", "read", "write", "status", "timeout")
            )
            return summary
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def request_body(model_dir: Path) -> str:
    description = json.loads((model_dir / "features.json").read_text())
    means = description.get("mean") or [1.0] * len(description["features"])
    row = [round(float(v), 4) for v in means]
    return json.dumps({"instances": [row]})


def run(options: Options) -> Result:
    from mlp_common.registry import ModelRegistry
    from mlp_serve.cli import model_name

    registry = ModelRegistry(str(options.registry))
    model = model_name(registry, options.model)
    entry = registry.get(model, options.version)
    body = request_body(entry.path)
    usable = len(os.sched_getaffinity(0))
    placements = [p for p in options.placements if p != "pinned" or usable >= 2] or ["unpinned"]
    result = Result(
        name="serving",
        title="Serving under load (wrk, v1 predict, one row per request)",
        conditions=(
            f"{usable} usable CPUs; {options.repeat} repetition(s) of {options.duration:g} s per "
            f"(concurrency, server), servers started together, visited in rotating order; "
            "pinned = servers on CPU 0 and wrk on CPU 1 (taskset), unpinned = no affinity."
        ),
        settings={
            "model": model,
            "version": entry.version,
            "body": body,
            "concurrency": list(options.concurrency),
            "duration_s": options.duration,
            "repeat": options.repeat,
            "servers": list(options.servers),
            "placements": placements,
            "ours": "mlp_serve defaults: --max-batch-size 32, --max-batch-delay-ms 1, "
            "--threads = the CPU limit",
        },
        plot={
            "title": "req/s by concurrency",
            "x": "concurrent connections",
            "y": "requests per second",
            "metric": "req_per_s",
            "logx": True,
            "logy": True,
        },
        tools={"wrk": tool_version(["wrk", "--version"])},
    )
    if "pinned" in options.placements and "pinned" not in placements:
        result.notes.append(f"pinned placement skipped: only {usable} usable CPU(s)")

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "body.lua"
        script.write_text(LUA.format(body=body))
        for placement in placements:
            server_pin, wrk_pin = ("0", "1") if placement == "pinned" else (None, None)
            runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
            with servers(options.servers, entry.path, model, options, server_pin, tmp) as live:
                urls = {
                    name: f"http://127.0.0.1:{server.port}/v1/models/{model}:predict"
                    for name, server in live.items()
                }
                for name in options.servers:  # warm-up: TF graphs, allocator, connections
                    wrk(urls[name], script, 8, options.warmup, wrk_pin)
                order = list(options.servers)
                for repetition in range(options.repeat):
                    rotated = order[repetition % len(order) :] + order[: repetition % len(order)]
                    for connections in options.concurrency:
                        for name in rotated:
                            pid = live[name].process.pid
                            cpu = cpu_seconds(pid)
                            summary = wrk(
                                urls[name], script, connections, options.duration, wrk_pin
                            )
                            cpu = cpu_seconds(pid) - cpu
                            summary["cpu_ms_per_request"] = (
                                1000 * cpu / summary["requests"] if summary["requests"] else 0.0
                            )
                            runs.setdefault((name, connections), []).append(summary)
            _record(result, placement, runs, options)
            if options.partial is not None:  # keep what is measured if a later phase fails
                result.write(options.partial)
    return result


def _record(
    result: Result,
    placement: str,
    runs: dict[tuple[str, int], list[dict[str, Any]]],
    options: Options,
) -> None:
    for (name, connections), summaries in runs.items():
        result.add(
            placement, name, connections, "req_per_s", "req/s", [s["req_per_s"] for s in summaries]
        )
        result.add(
            placement, name, connections, "p50_ms", "ms", [s["p50_us"] / 1000 for s in summaries]
        )
        result.add(
            placement, name, connections, "p99_ms", "ms", [s["p99_us"] / 1000 for s in summaries]
        )
        result.add(
            placement, name, connections, "errors", "count", [s["errors"] for s in summaries]
        )
        result.add(
            placement,
            name,
            connections,
            "cpu_ms_per_request",
            "ms",
            [s["cpu_ms_per_request"] for s in summaries],
        )
    top = max(options.concurrency)
    if (OURS, top) not in runs or (CEILING, top) not in runs:
        return
    ours, ceiling = runs[(OURS, top)], runs[(CEILING, top)]
    throughput = [o["req_per_s"] / c["req_per_s"] for o, c in zip(ours, ceiling, strict=True)]
    tail = [o["p99_us"] / c["p99_us"] for o, c in zip(ours, ceiling, strict=True)]
    cost = [
        o["cpu_ms_per_request"] / c["cpu_ms_per_request"]
        for o, c in zip(ours, ceiling, strict=True)
    ]
    rt = result.add(placement, "ours/ceiling", top, "req_per_s_ratio", "x", throughput)
    result.add(placement, "ours/ceiling", top, "cpu_per_request_ratio", "x", cost)
    pt = result.add(placement, "ours/ceiling", top, "p99_ratio", "x", tail)
    result.targets.append(
        Target(
            name=f"{placement}: req/s at {top} concurrent >= 0.7 x KServe constant model",
            value=round(rt.median, 3),
            target=0.7,
            unit="x",
            met=rt.median >= 0.7,
            detail=f"paired ratio per repetition, min {rt.min:.2f}, max {rt.max:.2f}",
        )
    )
    result.targets.append(
        cpu_projection(
            placement,
            top,
            result.find(placement, "ours/ceiling", top, "cpu_per_request_ratio").runs,
        )
    )
    result.targets.append(
        Target(
            name=f"{placement}: p99 at {top} concurrent <= 2 x KServe constant model's p99",
            value=round(pt.median, 3),
            target=2.0,
            unit="x",
            met=pt.median <= 2.0,
            detail=f"paired ratio per repetition, min {pt.min:.2f}, max {pt.max:.2f}",
        )
    )


def cpu_projection(placement: str, top: int, cost_ratios: list[float]) -> Target:
    """What the CPU cost per request says req/s would be on a core of our own: the ceiling's
    CPU per request over ours (paired per repetition), median. Informational on a quiet
    machine; the better estimate on a shared one, where wall-clock req/s measures the
    scheduler."""
    capacity = sorted(1 / r for r in cost_ratios)
    median = (
        capacity[len(capacity) // 2]
        if len(capacity) % 2
        else (capacity[len(capacity) // 2 - 1] + capacity[len(capacity) // 2]) / 2
    )
    return Target(
        name=f"{placement}: projected from CPU per request at {top} concurrent, "
        ">= 0.7 x KServe constant model",
        value=round(median, 3),
        target=0.7,
        unit="x",
        met=median >= 0.7,
        detail=f"ceiling CPU-ms per request / ours, paired; min {capacity[0]:.2f}, "
        f"max {capacity[-1]:.2f}",
    )
