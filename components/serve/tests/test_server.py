"""The model server as the Deployment runs it: a real process on loopback, real Keras models."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psutil
import pytest
from mlp_common.registry import ModelRegistry

from .conftest import (
    CLASSES,
    FEATURES,
    MODEL,
    Server,
    launch_server,
    metric_samples,
    post_json,
    register,
    request,
    stop_server,
    wait_until,
)

V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [0.0, 0.0, 0.0, 0.0]]
LIMIT = 4096


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[int, Path]
) -> Iterator[tuple[Server, Path]]:
    """One server for the read-only tests: version 1 in production, a request log, 4 KiB limit,
    and a 20 ms batching window so concurrent test requests surely share TensorFlow calls."""
    root = tmp_path_factory.mktemp("served")
    registry = ModelRegistry(root / "registry")
    assert register(registry, model_dirs[1]) == 1
    log = root / "requests.jsonl"
    server = launch_server(
        root,
        "--registry", str(registry.root),
        "--request-log", str(log),
        "--max-body-bytes", str(LIMIT),
        "--poll-interval", "0",
        "--max-batch-delay-ms", "20",
    )  # fmt: skip
    yield server, log
    assert stop_server(server) == 0, server.stderr()


def _expected(model_dir: Path, rows: list[list[float]]) -> np.ndarray:
    import tensorflow as tf

    model = tf.keras.models.load_model(model_dir / "model.keras", compile=False)
    return np.asarray(model(np.asarray(rows, dtype="float32"), training=False))


def test_v1_and_v2_predict_what_the_keras_model_predicts(
    served: tuple[Server, Path], model_dirs: dict[int, Path]
) -> None:
    server, _ = served
    expected = _expected(model_dirs[1], ROWS)
    want_labels = [CLASSES[i] for i in expected.argmax(axis=1)]

    status, body = post_json(server.url(V1), {"instances": ROWS})
    assert status == 200, body
    assert body["model_version"] == "1"
    assert body["predictions"] == want_labels
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-5, atol=1e-6)

    # Rows may also be objects keyed by feature name, in any key order.
    keyed = [dict(reversed(list(zip(FEATURES, row, strict=True)))) for row in ROWS]
    status, body = post_json(server.url(V1), {"instances": keyed})
    assert status == 200 and body["predictions"] == want_labels

    flat = [v for row in ROWS for v in row]
    v2_request = {
        "id": "req-1",
        "inputs": [{"name": "features", "shape": [3, 4], "datatype": "FP32", "data": flat}],
    }
    status, body = post_json(server.url(V2), v2_request)
    assert status == 200, body
    assert body["model_name"] == MODEL and body["model_version"] == "1" and body["id"] == "req-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["probabilities"]["shape"] == [3, 3]
    assert outputs["probabilities"]["datatype"] == "FP32"
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (3, 3)), expected, rtol=1e-5, atol=1e-6
    )
    assert outputs["label"]["data"] == want_labels


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [
        (V1, b'{"instances": [[1, 2, 3]]}', {}, 400, "instances[0]: 3 values, expected 4"),
        (
            V1,
            b'{"instances": [[1, 2, 3, "x"]]}',
            {},
            400,
            "instances[0][3]: a string is not a number",
        ),
        (V1, b'{"instances": [[1, 2, 3, 1e39]]}', {}, 400, "finite numbers"),
        (V1, b'{"instances": []}', {}, 400, "instances: no rows"),
        (V1, b'{"rows": [[1, 2, 3, 4]]}', {}, 400, '"instances" must be a list of rows'),
        (V1, b'{"instances": [{"sepal_length": 1}]}', {}, 400, "missing features: sepal_width"),
        (V1, b"{not json", {}, 400, "Unrecognized request format"),
        (V1, b"1,2,3,4", {"Content-Type": "text/csv"}, 400, "body must be JSON"),
        (
            V2,
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2]}]}',
            {},
            400,
            "input 'x': data does not match shape [1, 4]",
        ),
        (
            V2,
            b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]}]}',
            {},
            400,
            "input 'x': datatype BYTES is not numeric",
        ),
        (
            V2,
            b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}',
            {},
            400,
            "input 'x': expected shape [rows, 4], got [1, 3]",
        ),
        (V2, b'{"inputs": 3}', {}, 422, "Input should be a valid list"),
        ("/v1/models/nope:predict", b'{"instances": [[1, 2, 3, 4]]}', {}, 404, "nope"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_clear_message(
    served: tuple[Server, Path],
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    server, _ = served
    got, answer = request(server.url(path), body, headers)
    assert got == status, answer
    assert message in str(answer), answer


def _chunked_post(url: str, chunks: list[bytes]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            "POST",
            parts.path,
            body=iter(chunks),
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, response.read()
    except (BrokenPipeError, ConnectionResetError):  # the server may close before we finish
        return 413, b"connection closed"
    finally:
        connection.close()


def test_oversize_payloads_get_413(served: tuple[Server, Path]) -> None:
    server, _ = served
    big = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 400}).encode()
    assert len(big) > LIMIT
    status, body = request(server.url(V1), big)
    assert status == 413
    assert body == {"error": f"request body exceeds the {LIMIT}-byte limit"}

    # No Content-Length (chunked): counted while reading.
    status, raw = _chunked_post(
        server.url(V2), [big[i : i + 1024] for i in range(0, len(big), 1024)]
    )
    assert status == 413, raw

    # Just under the limit is served.
    small = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 50}).encode()
    assert len(small) < LIMIT
    assert request(server.url(V1), small)[0] == 200


def _count(server: Server, endpoint: str, code: str) -> float:
    samples = metric_samples(request(server.url("/metrics"))[1])
    return samples.get(("mlp_requests_total", (("code", code), ("endpoint", endpoint))), 0.0)


def test_metrics_count_responses_by_status_and_time_them(served: tuple[Server, Path]) -> None:
    server, _ = served
    before = {
        key: _count(server, *key)
        for key in [
            ("v1_predict", "200"),
            ("v1_predict", "400"),
            ("v2_infer", "200"),
            ("v1_predict", "413"),
        ]
    }
    for _ in range(3):
        assert post_json(server.url(V1), {"instances": ROWS})[0] == 200
    for _ in range(2):
        assert post_json(server.url(V1), {"instances": [[1]]})[0] == 400
    v2 = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    assert post_json(server.url(V2), v2)[0] == 200
    assert request(server.url(V1), b"[" * (LIMIT + 1))[0] == 413

    deltas = {key: _count(server, *key) - value for key, value in before.items()}
    assert deltas == {
        ("v1_predict", "200"): 3,
        ("v1_predict", "400"): 2,
        ("v2_infer", "200"): 1,
        ("v1_predict", "413"): 1,
    }
    text = request(server.url("/metrics"))[1]
    samples = metric_samples(text)
    assert samples[("mlp_request_duration_seconds_count", (("endpoint", "v1_predict"),))] >= 6
    assert (
        "mlp_request_duration_seconds_bucket",
        (("endpoint", "v2_infer"), ("le", "0.1")),
    ) in samples
    assert samples[("mlp_model_version", (("model", MODEL),))] == 1
    created = samples[("mlp_model_created_timestamp_seconds", (("model", MODEL),))]
    loaded = samples[("mlp_model_loaded_timestamp_seconds", (("model", MODEL),))]
    assert 0 < created <= loaded <= time.time()


def test_probes_and_loopback_bind(served: tuple[Server, Path]) -> None:
    server, _ = served
    assert request(server.url("/")) == (200, {"status": "alive"})
    assert request(server.url("/v2/health/live"))[0] == 200
    assert request(server.url("/v2/health/ready"))[0] == 200
    assert request(server.url(f"/v1/models/{MODEL}")) == (200, {"name": MODEL, "ready": True})
    assert request(server.url(f"/v2/models/{MODEL}/ready"))[0] == 200
    listening = {
        c.laddr.ip
        for c in psutil.Process(server.process.pid).connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {"127.0.0.1"}  # the default bind host, not KServe's 0.0.0.0


def test_request_log_is_what_drift_reads(served: tuple[Server, Path]) -> None:
    from mlp_drift.inputs import request_log_columns

    server, log = served
    marker = [[9.5, 8.5, 7.5, 6.5]]
    assert post_json(server.url(V1), {"instances": marker})[0] == 200

    def newest_row() -> list[float] | None:
        # Earlier tests' requests are in the same log, and the writer is asynchronous: wait for
        # the newest row to be this request's, so an old row read early is not the answer.
        columns = request_log_columns(log, FEATURES, window=1)
        if not columns or not columns[FEATURES[0]].size:
            return None
        row = [float(columns[name][0]) for name in FEATURES]
        return row if row == marker[0] else None

    assert wait_until(newest_row, "the request log writer to log the marker", timeout=30)
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["model"] == MODEL and last["version"] == 1
    assert last["features"] == FEATURES


def test_hot_reload_under_concurrent_requests_drops_nothing(
    tmp_path: Path, model_dirs: dict[int, Path]
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    register(registry, model_dirs[1])
    server = launch_server(
        tmp_path,
        "--registry",
        str(registry.root),
        "--version",
        "production",
        "--poll-interval",
        "0.3",
    )
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    done = threading.Event()

    def client() -> None:
        for _ in range(2000):  # bounded; normally stopped by `done` well before
            if done.is_set():
                return
            try:
                status, body = post_json(server.url(V1), {"instances": ROWS[:1]})
            except BaseException as exc:  # noqa: BLE001 - any failure is a dropped request
                with lock:
                    errors.append(exc)
                return
            with lock:
                results.append(
                    (status, body.get("model_version", "") if isinstance(body, dict) else "")
                )

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(results) >= 20, "traffic on version 1", timeout=60)
        assert register(registry, model_dirs[2]) == 2  # promote: production -> 2
        wait_until(lambda: any(v == "2" for _, v in results[-8:]), "version 2 to serve", timeout=90)
        seen = len(results)
        wait_until(lambda: len(results) >= seen + 20, "traffic on version 2", timeout=60)
        # A broken version is promoted: the server keeps serving 2 and counts the failure.
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "model.keras").write_bytes(b"not a model")
        registry.promote(MODEL, register(registry, broken, promote=False), reason="test")
        wait_until(
            lambda: metric_samples(request(server.url("/metrics"))[1]).get(
                ("mlp_model_reloads_total", (("model", MODEL), ("outcome", "error")))
            ),
            "the failed reload to be counted",
            timeout=60,
        )
        seen = len(results)
        wait_until(lambda: len(results) >= seen + 10, "traffic after the failed reload", timeout=60)
        samples = metric_samples(request(server.url("/metrics"))[1])
        assert samples[("mlp_model_version", (("model", MODEL),))] == 2
        assert samples[("mlp_model_reloads_total", (("model", MODEL), ("outcome", "ok")))] == 1
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
        code = stop_server(server)

    assert not errors, errors[:3]
    assert {status for status, _ in results} == {200}
    versions = [v for _, v in results]
    first_two = versions.index("2")
    assert set(versions[:first_two]) == {"1"}
    assert set(versions[first_two + 8 :]) == {"2"}  # in-flight stragglers aside, no flapping back
    assert code == 0, server.stderr()


def test_alert_rules_query_metrics_this_server_exports(served: tuple[Server, Path]) -> None:
    """The generated PrometheusRule (platformgen) and this exporter agree on names and labels."""
    from platformgen.builders import prometheus_rule

    server, _ = served
    assert post_json(server.url(V1), {"instances": ROWS})[0] == 200
    samples = metric_samples(request(server.url("/metrics"))[1])
    names = {name for name, _ in samples}
    assert prometheus_rule.REQUESTS_TOTAL in names
    assert prometheus_rule.REQUEST_DURATION + "_bucket" in names
    assert prometheus_rule.MODEL_CREATED in names
    codes = {dict(labels).get("code") for name, labels in samples if name == "mlp_requests_total"}
    assert "200" in codes  # the rules select 5xx with code=~"5.."


def _batches(server: Server) -> tuple[float, float]:
    """(TensorFlow calls, requests answered by them) so far, from /metrics."""
    samples = metric_samples(request(server.url("/metrics"))[1])
    return (
        samples[("mlp_predict_batch_requests_count", ())],
        samples[("mlp_predict_batch_requests_sum", ())],
    )


def test_batched_answers_are_identical_to_single_answers(served: tuple[Server, Path]) -> None:
    server, _ = served
    rng = np.random.default_rng(7)
    questions = [
        rng.normal(5, 3, size=(1 + i % 3, len(FEATURES))).round(3).tolist() for i in range(48)
    ]
    alone = []
    for rows in questions:  # one at a time: every call carries exactly one request
        status, body = post_json(server.url(V1), {"instances": rows})
        assert status == 200, body
        alone.append(body)

    calls_before, requests_before = _batches(server)
    together: list[object] = [None] * len(questions)
    start = threading.Barrier(16)

    def client(offset: int) -> None:
        start.wait()
        for i in range(offset, len(questions), 16):
            together[i] = post_json(server.url(V1), {"instances": questions[i]})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    calls_after, requests_after = _batches(server)
    calls, requests = calls_after - calls_before, requests_after - requests_before

    assert requests == len(questions)
    assert calls < len(questions)  # some requests really shared a call
    for i, (single, answer) in enumerate(zip(alone, together, strict=True)):
        assert answer == (200, single), f"question {i}: batched answer differs from single"


def test_a_third_party_v2_client_discovers_and_calls_the_model(
    served: tuple[Server, Path], model_dirs: dict[int, Path]
) -> None:
    """NVIDIA's Triton client speaks the Open Inference Protocol; it is not our code."""
    import tritonclient.http as triton

    server, _ = served
    client = triton.InferenceServerClient(url=server.base.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_model_ready(MODEL)
        metadata = client.get_model_metadata(MODEL)
        assert metadata["name"] == MODEL
        assert metadata["versions"] == ["1"]
        assert metadata["inputs"] == [
            {"name": "features", "datatype": "FP32", "shape": [-1, len(FEATURES)]}
        ]
        assert metadata["outputs"] == [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(CLASSES)]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ]

        # Build the request only from what the metadata says, as a generic client would.
        (signature,) = metadata["inputs"]
        x = np.asarray(ROWS, dtype="float32")
        expected = _expected(model_dirs[1], ROWS)
        for binary in (False, True):
            tensor = triton.InferInput(signature["name"], list(x.shape), signature["datatype"])
            tensor.set_data_from_numpy(x, binary_data=binary)
            outputs = [triton.InferRequestedOutput(o["name"]) for o in metadata["outputs"]]
            result = client.infer(MODEL, [tensor], outputs=outputs)
            response = result.get_response()
            assert response["model_name"] == MODEL and response["model_version"] == "1"
            np.testing.assert_allclose(
                result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6
            )
            labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
            assert labels == [CLASSES[i] for i in expected.argmax(axis=1)]
    finally:
        client.close()


def _served_versions(server: Server) -> tuple[str, str]:
    """The version each protocol's response says served the request (v1 body, v2 body)."""
    status, v1 = post_json(server.url(V1), {"instances": ROWS[:1]})
    assert status == 200, v1
    v2_request = {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32",
                              "data": ROWS[0]}]}  # fmt: skip
    status, v2 = post_json(server.url(V2), v2_request)
    assert status == 200, v2
    return str(v1["model_version"]), str(v2["model_version"])


def _reloads(server: Server) -> float:
    samples = metric_samples(request(server.url("/metrics"))[1])
    return samples.get(("mlp_model_reloads_total", (("model", MODEL), ("outcome", "ok"))), 0.0)


def test_hot_reload_follows_only_its_own_pointer(
    tmp_path: Path, model_dirs: dict[int, Path]
) -> None:
    """The canary's premise: a server pinned to a version (the stable or the canary revision)
    never switches when the registry's production pointer moves, so a promotion cannot bypass
    the canary; a server following `production` (dev) reloads when that pointer moves, and not
    when only `latest` does. Every response names the version that served it."""
    registry = ModelRegistry(tmp_path / "registry")
    assert register(registry, model_dirs[1]) == 1  # production -> 1
    poll = ("--poll-interval", "0.2")
    pinned = launch_server(
        tmp_path, "--registry", str(registry.root), "--model-version", "1", *poll
    )
    following = launch_server(
        tmp_path, "--registry", str(registry.root), "--model-version", "production", *poll
    )
    try:
        assert _served_versions(pinned) == ("1", "1")
        assert _served_versions(following) == ("1", "1")

        # a new candidate: `latest` moves, `production` does not; neither server reloads
        assert register(registry, model_dirs[2], promote=False) == 2
        assert registry.pointer(MODEL, "latest") == 2
        time.sleep(2.0)  # ten polls
        assert _served_versions(following) == ("1", "1") and _reloads(following) == 0

        # the production pointer moves (what `mlp-registry promote` or a full promote-model
        # does): the follower reloads; the pinned server keeps serving 1 and never reloads
        registry.promote(MODEL, 2, expected=1, reason="test")
        wait_until(lambda: _served_versions(following) == ("2", "2"), "the follower on 2", 90)
        assert _reloads(following) == 1
        time.sleep(1.0)
        assert _served_versions(pinned) == ("1", "1")
        assert _reloads(pinned) == 0
        metadata = request(pinned.url(f"/v2/models/{MODEL}"))[1]
        assert metadata["versions"] == ["1"]
    finally:
        codes = [stop_server(pinned), stop_server(following)]
    assert codes == [0, 0], pinned.stderr() + following.stderr()
