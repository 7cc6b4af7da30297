"""ASGI middleware in front of KServe's FastAPI app: payload limit (413) and request metrics.

It is pure ASGI (no per-request Request objects). The size limit is enforced from
Content-Length before the app runs and, for chunked bodies, while the body is read. Metrics
are recorded after the last response byte has been sent, so the client never waits for them.
A v2 infer request without Content-Type (and without the binary extension's header) is JSON,
as the Open Inference Protocol says; the middleware adds the header FastAPI needs to parse it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from mlp_serve import metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
JSON = b"application/json"


def _too_large(limit: int) -> str:
    return f"request body exceeds the {limit}-byte limit"


class ServingMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        endpoint = metrics.endpoint_of(scope["path"])
        status = 500
        limit = self.max_body_bytes

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            declared, typed = _inspect_headers(scope)
            if declared is not None and declared > limit:
                await _reject(send_and_capture, 413, _too_large(limit))
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        # FastAPI turns an HTTPException raised while reading into that response.
                        raise HTTPException(status_code=413, detail=_too_large(limit))
                return message

            if endpoint == "v2_infer" and not typed:
                # Open Inference Protocol clients (Triton's among them) send a JSON body without
                # Content-Type; FastAPI would hand KServe raw bytes, which it takes for the
                # binary extension and rejects. Say what the protocol means: JSON.
                scope = {**scope, "headers": [*scope["headers"], (b"content-type", JSON)]}
            await self.app(scope, limited_receive, send_and_capture)
        finally:
            metrics.observe_request(endpoint, status, time.perf_counter() - start)


def _inspect_headers(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length if valid, whether Content-Type or the binary-extension header is set)."""
    length = None
    typed = False
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif key in (b"content-type", b"inference-header-content-length"):
            typed = True
    return length, typed


async def _reject(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
