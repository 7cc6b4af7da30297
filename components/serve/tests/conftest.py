"""A real registry with tiny real Keras models (built here, no network), and a server runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlp_common.registry import ModelRegistry

MODEL = "iris-like"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]


def build_model_dir(directory: Path, seed: int) -> Path:
    """A 4-feature, 3-class Keras classifier fitted for one epoch on seeded random data."""
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, len(FEATURES))).astype("float32")
    y = rng.integers(0, len(CLASSES), size=64)
    inputs = tf.keras.Input(shape=(len(FEATURES),), name="features")
    hidden = tf.keras.layers.Dense(8, activation="relu")(inputs)
    outputs = tf.keras.layers.Dense(len(CLASSES), activation="softmax")(hidden)
    model = tf.keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    directory.mkdir(parents=True)
    with warnings.catch_warnings():
        # Keras 3 on NumPy 2 converts variables with np.array(copy=False) while saving.
        warnings.filterwarnings(
            "ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning
        )
        model.save(directory / "model.keras")
    (directory / "features.json").write_text(
        json.dumps({"features": FEATURES, "classes": CLASSES, "target": "species"})
    )
    return directory


def register(registry: ModelRegistry, source: Path, *, promote: bool = True) -> int:
    version = registry.register(MODEL, source, {"params": {"source": source.name}}, promote=promote)
    return version.version


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two trained model directories, built once per session (TF is slow to import)."""
    root = tmp_path_factory.mktemp("models")
    return {seed: build_model_dir(root / str(seed), seed) for seed in (1, 2)}


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def url(self, path: str) -> str:
        return self.base + path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=body, headers=headers or {}, method="POST" if body is not None else "GET"
    )
    if body is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def post_json(url: str, document: Any) -> tuple[int, Any]:
    return request(url, json.dumps(document).encode())


def launch_server(workdir: Path, *args: str) -> Server:
    """Start ``python -m mlp_serve`` on loopback and wait (bounded) until the model is ready."""
    port = free_port()
    stderr_path = workdir / f"serve-{port}.stderr"
    with stderr_path.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "mlp_serve", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        )
    server = Server(f"http://127.0.0.1:{port}", process, stderr_path)
    deadline = time.monotonic() + 600  # TensorFlow start-up on a busy 2-core machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{server.stderr()}")
        try:
            if request(server.url(f"/v1/models/{MODEL}"), timeout=2)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.25)
    stop_server(server)
    raise AssertionError(f"server not ready in 600 s:\n{server.stderr()}")


def stop_server(server: Server) -> int:
    """SIGTERM (what the kubelet sends), then a bounded wait; returns the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    return server.process.returncode


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_until(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
