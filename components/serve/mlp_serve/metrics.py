"""Serving metrics on the default Prometheus registry (KServe's /metrics serves that registry).

Alert-facing names (stable):
- ``mlp_requests_total{endpoint, code}``: responses by endpoint and HTTP status code;
  ``endpoint`` is one of v1_predict, v2_infer, health, metrics, other (bounded cardinality).
- ``mlp_request_duration_seconds{endpoint}``: histogram, request received -> last byte sent.
- ``mlp_model_version{model}``: the registry version being served.
- ``mlp_model_loaded_timestamp_seconds{model}``: when that version was loaded here.
- ``mlp_model_created_timestamp_seconds{model}``: when that version was registered (model age).
- ``mlp_model_reloads_total{model, outcome}``: hot reloads, outcome ok|error.
- ``mlp_predict_batch_requests``: histogram of requests per TensorFlow call (micro-batching);
  ``_sum / _count`` is the mean batch. Observed once per batch, on the event loop.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "mlp_requests", "HTTP responses by endpoint and status code", ["endpoint", "code"]
)
LATENCY = Histogram(
    "mlp_request_duration_seconds",
    "Time from request start to the last response byte",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MODEL_VERSION = Gauge("mlp_model_version", "Registry version being served", ["model"])
MODEL_LOADED = Gauge(
    "mlp_model_loaded_timestamp_seconds", "Unix time the served version was loaded", ["model"]
)
MODEL_CREATED = Gauge(
    "mlp_model_created_timestamp_seconds",
    "Unix time the served version was registered (its age is time() - this)",
    ["model"],
)
RELOADS = Counter(
    "mlp_model_reloads", "Hot reloads of a new registry version", ["model", "outcome"]
)


@cache
def _request_children(endpoint: str, status: int) -> tuple[Counter, Histogram]:
    # ``labels()`` looks the child up under a lock on every call; the label sets are bounded
    # (five endpoints x a handful of codes), so keep the children.
    return REQUESTS.labels(endpoint=endpoint, code=str(status)), LATENCY.labels(endpoint=endpoint)


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    """Count one response and time it (after its last byte went out)."""
    counter, histogram = _request_children(endpoint, status)
    counter.inc()
    histogram.observe(seconds)


def endpoint_of(path: str) -> str:
    """A bounded label for a request path."""
    if path.startswith("/v1/models/") and path.endswith(":predict"):
        return "v1_predict"
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        return "v2_infer"
    if path == "/metrics":
        return "metrics"
    if path == "/" or path.startswith(("/v2/health", "/v1/models/", "/v2/models/")):
        return "health"
    return "other"


BATCH_REQUESTS = Histogram(
    "mlp_predict_batch_requests",
    "Requests answered by one TensorFlow call (adaptive micro-batching)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
