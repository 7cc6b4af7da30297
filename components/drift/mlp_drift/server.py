"""The long-running drift exporter: re-evaluates recent traffic on an interval, serves /metrics.

Probes: ``/healthz`` (liveness, always 200 while the process serves) and ``/readyz`` (200 once
the reference is loaded and one evaluation has run).

``POST /log`` is a sink for KServe's payload logger (InferenceService
``spec.predictor.logger: {mode: request, url: http://<drift>:8000/log}``): each CloudEvent body is
the inference request (v1 or v2 JSON); its rows go into the in-memory window. Response events
are accepted and ignored. Bodies are limited (413); bad JSON gets 400. Any other path is 404.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mlp_drift.core import DriftError, DriftReport
from mlp_drift.metrics import DriftMetrics

log = logging.getLogger(__name__)

DRAIN_LIMIT = 16 << 20  # an oversized body up to this size is read and dropped before the 413


class DriftExporter:
    """Evaluate ``evaluate()`` every ``interval`` seconds and serve the result on host:port."""

    def __init__(
        self,
        evaluate: Callable[[], DriftReport],
        host: str,
        port: int,
        interval: float,
        sink: Callable[[Any], None] | None = None,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self.evaluate = evaluate
        self.sink = sink
        self.max_body_bytes = max_body_bytes
        self.interval = interval
        self.metrics = DriftMetrics()
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.last_report: DriftReport | None = None
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    def evaluate_once(self) -> None:
        try:
            report = self.evaluate()
        except DriftError as exc:
            log.error("drift evaluation failed: %s", exc)
            self.metrics.failed(time.time())
        else:
            self.last_report = report
            self.metrics.update(report, time.time())
            log.info(
                "drift evaluated: detected=%s samples=%s",
                report.drift_detected,
                report.current_samples,
            )
        self.ready.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.evaluate_once()
            self._stop.wait(self.interval)

    def start(self) -> None:
        for target in (self._loop, self.httpd.serve_forever):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._threads:
            self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, exporter.metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ready = exporter.ready.is_set()
                    self._send(200 if ready else 503, b"ok\n" if ready else b"not evaluated yet\n")
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?", 1)[0] != "/log" or exporter.sink is None:
                    self._send(404, b"not found: POST /log takes KServe logger events\n")
                    return
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self._send(411, b"Content-Length required\n")
                    return
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
                    return
                body = self.rfile.read(int(length))
                if self.headers.get("Ce-Type", "").endswith(".response"):
                    self._send(202, b"ignored: response event\n")
                    return
                try:
                    exporter.sink(json.loads(body))
                except (ValueError, DriftError) as exc:
                    self._send(400, f"{exc}\n".encode())
                    return
                self._send(202, b"accepted\n")

            def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("%s " + format, self.address_string(), *args)

        return Handler
