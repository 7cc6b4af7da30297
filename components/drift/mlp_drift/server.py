"""The long-running drift monitor: counts served feature values per reference bin, follows the
registry's production pointer, serves /metrics, and turns drift alerts into pipeline runs.

Endpoints:

- ``GET /metrics``: :class:`mlp_drift.metrics.ObservationMetrics` (drift itself is computed
  from them by the PrometheusRule's recording rules, over every replica);
- ``GET /healthz`` (liveness, 200 while the process serves) and ``GET /readyz`` (200 once a
  reference is loaded; a not-ready probe also re-reads the registry, so readiness does not wait
  for the next poll; the 503 body says why, e.g. no production version);
- ``POST /log``: a sink for KServe's payload logger (InferenceService
  ``spec.predictor.logger: {mode: request, url: http://<drift>:8000/log}``): each CloudEvent
  body is the inference request (v1 or v2 JSON). Response events are accepted and ignored. 503
  before a reference is loaded, 400 on bad rows;
- ``POST /alerts``: the Alertmanager webhook receiver (:mod:`mlp_drift.retrain`), 404 when
  retraining is off.

Bodies are limited (413); bad JSON gets 400. Any other path is 404.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mlp_drift.core import DriftError
from mlp_drift.inputs import payload_rows, rows_to_matrix
from mlp_drift.metrics import ObservationMetrics
from mlp_drift.reference import Reference
from mlp_drift.retrain import RetrainTrigger

log = logging.getLogger(__name__)

DRAIN_LIMIT = 16 << 20  # an oversized body up to this size is read and dropped before the 413


class ReferenceSource:
    """Where the reference comes from: ``version()`` is cheap (the production pointer),
    ``load(version)`` reads the statistics of that version."""

    def __init__(self, version: Callable[[], str], load: Callable[[str], Reference]) -> None:
        self.version = version
        self.load = load


class Monitor:
    """The reference in use and the counters it bins served rows into (thread-safe)."""

    def __init__(self, source: ReferenceSource, metrics: ObservationMetrics) -> None:
        self.source = source
        self.metrics = metrics
        self.reference: Reference | None = None
        self.problem = "no reference loaded yet"
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    def refresh(self) -> None:
        """Re-read the pointer; load and switch to its version when it moved."""
        with self._refresh_lock:
            try:
                version = self.source.version()
                if self.reference is not None and self.reference.version == version:
                    return
                reference = self.source.load(version)
            except DriftError as exc:
                self.metrics.reference_errors.inc()
                self.problem = str(exc)
                log.error("drift reference: %s", exc)
                return
            with self._lock:
                before = self.reference
                self.reference = reference
                self.metrics.set_reference(reference)
            log.warning(
                "drift reference: version %s (%d features) from %s%s",
                reference.version,
                len(reference.features),
                reference.source,
                f", was version {before.version}" if before else "",
            )

    def observe(self, document: Any) -> None:
        rows = payload_rows(document)
        with self._lock:
            reference = self.reference
            if reference is None:
                raise LookupError(self.problem)
            matrix = rows_to_matrix((("request", row) for row in rows), reference.names)
            self.metrics.observe(reference, matrix)


class DriftExporter:
    """Serve ``monitor`` on host:port; re-read the reference every ``interval`` seconds."""

    def __init__(
        self,
        monitor: Monitor,
        host: str,
        port: int,
        interval: float,
        trigger: RetrainTrigger | None = None,
        max_body_bytes: int = 1 << 20,
        alerts_port: int | None = None,
    ) -> None:
        self.monitor = monitor
        self.trigger = trigger
        self.max_body_bytes = max_body_bytes
        self.interval = interval
        self._stop = threading.Event()
        # With `alerts_port`, POST /alerts (which starts retraining) has a listener of its own,
        # so a NetworkPolicy can open it to Alertmanager alone while the model server's
        # payload logger keeps /log on `port`.
        self.alerts_httpd: ThreadingHTTPServer | None = None
        if alerts_port is not None:
            self.alerts_httpd = ThreadingHTTPServer(
                (host, alerts_port), self._handler(("/alerts",))
            )
            self.alerts_httpd.daemon_threads = True
        routes = ("/log",) if self.alerts_httpd is not None else ("/log", "/alerts")
        try:
            self.httpd = ThreadingHTTPServer((host, port), self._handler(routes))
        except OSError:
            if self.alerts_httpd is not None:
                self.alerts_httpd.server_close()
            raise
        self.httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.monitor.refresh()
            except Exception:  # a bug, or a store error not mapped to OSError: keep polling
                log.exception("drift reference refresh failed")
                self.monitor.metrics.reference_errors.inc()
            self._stop.wait(self.interval)

    @property
    def alerts_address(self) -> tuple[str, int] | None:
        if self.alerts_httpd is None:
            return None
        host, port = self.alerts_httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        servers = [self.httpd] + ([self.alerts_httpd] if self.alerts_httpd is not None else [])
        for target in (self._loop, *(server.serve_forever for server in servers)):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        servers = [self.httpd] + ([self.alerts_httpd] if self.alerts_httpd is not None else [])
        for server in servers:
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def _handler(self, routes: tuple[str, ...]) -> type[BaseHTTPRequestHandler]:
        """The request handler of one listener; `routes` are the POST paths it accepts (the
        alerts listener serves POST /alerts and GET /healthz only)."""
        exporter = self
        alerts_only = routes == ("/alerts",)
        monitor = self.monitor
        metrics = monitor.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if alerts_only and path != "/healthz":
                    self._send(404, b"not found: this port receives POST /alerts only\n")
                elif path == "/metrics":
                    self._send(200, metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    if monitor.reference is None:
                        monitor.refresh()
                    reference = monitor.reference
                    if reference is None:
                        self._send(503, f"not ready: {monitor.problem}\n".encode())
                    else:
                        self._send(200, f"ok: reference version {reference.version}\n".encode())
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path == "/alerts" and exporter.trigger is None:
                    self._send(404, b"not found: retraining is off (--retrain)\n")
                    return
                if path not in routes:
                    where = " or ".join(routes)
                    self._send(404, f"not found: POST {where} on this port\n".encode())
                    return
                body = self._body()
                if body is None:
                    return
                if path == "/log" and self.headers.get("Ce-Type", "").endswith(".response"):
                    self._send(202, b"ignored: response event\n")
                    return
                try:
                    document = json.loads(body)
                except ValueError as exc:
                    if path == "/alerts":
                        metrics.retrain.labels(outcome="rejected").inc()
                    self._send(400, f"body is not JSON: {exc}\n".encode())
                    return
                if path == "/alerts":
                    assert exporter.trigger is not None
                    outcome = exporter.trigger.notify(document)
                    metrics.retrain.labels(outcome=outcome.outcome).inc()
                    self._send(outcome.status, f"{outcome.message}\n".encode())
                    return
                try:
                    monitor.observe(document)
                except LookupError as exc:
                    self._send(503, f"not ready: {exc}\n".encode())
                    return
                except DriftError as exc:
                    self._send(400, f"{exc}\n".encode())
                    return
                self._send(202, b"accepted\n")

            def _body(self) -> bytes | None:
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self._send(411, b"Content-Length required\n")
                    return None
                if int(length) > exporter.max_body_bytes:
                    self.close_connection = True
                    if int(length) <= DRAIN_LIMIT:  # let the client finish sending, then answer
                        remaining = int(length)
                        while remaining > 0:
                            chunk = self.rfile.read(min(remaining, 65536))
                            if not chunk:  # the client gave up
                                break
                            remaining -= len(chunk)
                    self._send(413, f"body over {exporter.max_body_bytes} bytes\n".encode())
                    return None
                return self.rfile.read(int(length))

            def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("%s " + format, self.address_string(), *args)

        return Handler
