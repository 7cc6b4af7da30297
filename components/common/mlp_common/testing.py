"""Test support shared by the component test suites (not used at run time).

:func:`s3_server` starts a local S3-compatible server (moto, on 127.0.0.1 and a free port) and
points ``AWS_ENDPOINT_URL`` and credentials at it, so ``s3://`` code paths run against a real S3
protocol endpoint without any network access.

``serialized=True`` serves one request at a time. moto implements ``If-Match``/``If-None-Match``
on ``PutObject`` as "check, then store" in Python; S3 and MinIO make that one atomic step. A
threaded moto server could let two conditional writes both pass between the check and the store,
a race the real stores do not have; serializing requests restores the real stores' atomicity,
while clients in different processes still interleave their reads and writes freely.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator

S3_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


class _SerializedMotoServer:
    """moto's server app on a single-threaded WSGI server (one request at a time)."""

    def __init__(self) -> None:
        import threading

        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


@contextlib.contextmanager
def s3_server(*buckets: str, serialized: bool = False) -> Iterator[str]:
    """Run a local S3 server with ``buckets`` created; yields its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server: ThreadedMotoServer | _SerializedMotoServer = (
        _SerializedMotoServer()
        if serialized
        else ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    )
    server.start()
    saved = {key: os.environ.get(key) for key in S3_ENV}
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        # Servers in one process share moto's in-memory state: start every server empty.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        client = boto3.client("s3", endpoint_url=endpoint)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
