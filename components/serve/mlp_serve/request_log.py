"""The request log that ``mlp-drift`` reads: JSON Lines written by a background thread.

The request path only does ``queue.put_nowait``; encoding and disk I/O happen on the writer
thread. A full queue drops the record and counts it (the log is a sample for drift, not an
audit trail). ``<path>`` rotates to ``<path>.1`` past ``max_bytes``; see ``mlp_drift.inputs``
for the line format.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from prometheus_client import Counter

log = logging.getLogger(__name__)

DROPPED = Counter(
    "mlp_serve_request_log_dropped", "Request-log records dropped because the writer fell behind"
)
_STOP = object()


class RequestLog:
    def __init__(self, path: Path, model: str, max_bytes: int, queue_size: int = 10_000) -> None:
        self.path = path
        self.model = model
        self.max_bytes = max_bytes
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def submit(self, version: int, features: Sequence[str], rows: np.ndarray) -> None:
        """Hot path: hand the rows to the writer (no copy, no encoding here)."""
        try:
            self._queue.put_nowait((time.time(), version, features, rows))
        except queue.Full:
            DROPPED.inc()

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _open(self) -> IO[str]:
        return self.path.open("a", encoding="utf-8")

    def _run(self) -> None:
        handle = self._open()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                ts, version, features, rows = item
                record = {
                    "ts": ts,
                    "model": self.model,
                    "version": version,
                    "features": list(features),
                    "instances": rows.tolist(),
                }
                handle.write(json.dumps(record, separators=(",", ":")) + "\n")
                if self._queue.empty():
                    handle.flush()
                if handle.tell() > self.max_bytes:
                    handle.close()
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                    handle = self._open()
        except OSError as exc:  # a full or read-only disk must not take serving down
            log.error("request log %s stopped: %s", self.path, exc)
        finally:
            handle.close()
