"""``python -m mlp_serve.smoke``: start the server on a free loopback port, ask it one v1 and one
v2 question about a typical row (the training means from the version's features.json), print
the answers as JSON on stdout, and stop it. Exit 0 only when both answers agree.

For ``make demo``: it proves the registry's version loads and serves, end to end, offline.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from mlp_common.files import read_json
from mlp_common.registry import ModelRegistry
from mlp_common.step import StepError, configure_logging, run_step

from mlp_serve.cli import model_name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, document: Any | None = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _smoke(args: argparse.Namespace) -> int:
    registry = ModelRegistry(args.registry)
    model = model_name(registry, args.model)
    version = registry.get(model, args.version)
    described = version.path / "features.json"
    if not described.is_file():
        raise StepError(f"{described}: missing; cannot build a smoke request")
    description = read_json(described)
    features = description["features"]
    row = description.get("mean") or [0.0] * len(features)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "mlp_serve",
                "--registry", str(args.registry), "--model", model,
                "--version", str(version.version), "--host", "127.0.0.1", "--port", str(port),
                "--poll-interval", "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + args.timeout
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    raise StepError(f"server exited {server.returncode}:\n{log.read().decode()}")
                if time.monotonic() > deadline:
                    raise StepError(f"server not ready within {args.timeout:g}s")
                try:
                    if _call(f"{base}/v2/health/ready", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.25)
            started = time.perf_counter()
            v1_status, v1 = _call(f"{base}/v1/models/{model}:predict", {"instances": [row]})
            v1_ms = (time.perf_counter() - started) * 1000
            tensor = {"name": "features", "shape": [1, len(row)], "datatype": "FP32", "data": row}
            v2_status, v2 = _call(f"{base}/v2/models/{model}/infer", {"inputs": [tensor]})
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
    if v1_status != 200 or v2_status != 200:
        raise StepError(f"smoke request failed: v1 {v1_status} {v1}; v2 {v2_status} {v2}")
    v2_label = next(o["data"][0] for o in v2["outputs"] if o["name"] == "label")
    summary = {
        "model": model,
        "version": version.version,
        "v1_prediction": v1["predictions"][0],
        "v2_prediction": v2_label,
        "probabilities": v1["probabilities"][0],
        "v1_latency_ms": round(v1_ms, 1),
    }
    print(json.dumps(summary, sort_keys=True))
    if v1["predictions"][0] != v2_label:
        raise StepError("v1 and v2 disagree on the same row")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlp_serve.smoke", description=__doc__)
    parser.add_argument("--registry", default=".run/registry", help="a path or s3:// URI")
    parser.add_argument("--model", help="default: the registry's only model")
    parser.add_argument("--version", default="latest", help="N, latest or production")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for ready")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    return run_step("serve-smoke", lambda: _smoke(args))


if __name__ == "__main__":
    raise SystemExit(main())
