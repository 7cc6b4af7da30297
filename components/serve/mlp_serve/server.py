"""Run KServe's REST server for one ``RegistryModel`` on a configurable host.

KServe 0.21's ``RESTServer`` hard-codes ``host="0.0.0.0"`` in its uvicorn config; we subclass it
to set the host, turn the per-request access log off (logging stays off the request path), drop
KServe's per-request timing log middleware, and put ``ServingMiddleware`` (413 + metrics) and a
quiet 400 handler on the app. gRPC stays off.

KServe's ``DataPlane`` answers v2 model metadata with empty ``inputs``/``outputs`` and no
``versions``; ``RegistryDataPlane`` answers from the served version instead. The event loop's
default executor is sized to the CPU limit (KServe's own sizing reads only cgroup v1).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.rest.server import RESTServer
from timing_asgi import TimingMiddleware
from uvicorn.importer import import_from_string

from mlp_serve.http import ServingMiddleware
from mlp_serve.model import RegistryModel


async def _invalid_input(_: Any, exc: Exception) -> JSONResponse:
    # KServe's own handler logs a traceback per bad request; a 400 is the client's problem.
    return JSONResponse(status_code=400, content={"error": str(exc)})


class RegistryDataPlane(DataPlane):  # type: ignore[misc]
    """v2 model metadata with the served version, the input and every output."""

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        model = self.get_model_from_registry(model_name)
        if isinstance(model, RegistryModel):
            return model.metadata()
        return await super().model_metadata(model_name)  # type: ignore[no-any-return]


class BoundRESTServer(RESTServer):  # type: ignore[misc]
    def __init__(self, *args: Any, host: str, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.host = host
        self.config.access_log = False
        self.max_body_bytes = max_body_bytes

    def create_application(self) -> None:
        super().create_application()
        app = import_from_string(FASTAPI_APP_IMPORT_STRING)
        # KServe's TimingMiddleware routes every request a second time (to name it) and reads
        # getrusage twice, only to log at INFO on ``kserve.trace``, a logger that is off here.
        # ServingMiddleware already times every request into mlp_request_duration_seconds.
        app.user_middleware = [m for m in app.user_middleware if m.cls is not TimingMiddleware]
        app.add_exception_handler(InvalidInput, _invalid_input)
        app.add_middleware(ServingMiddleware, max_body_bytes=self.max_body_bytes)


class BoundModelServer(ModelServer):  # type: ignore[misc]
    """``ModelServer`` with a bind host and a payload limit; one REST worker, no gRPC."""

    def __init__(
        self, *, host: str, port: int, max_body_bytes: int, grace_period: int, threads: int = 1
    ) -> None:
        super().__init__(
            http_port=port,
            workers=1,
            max_asyncio_workers=threads,
            enable_grpc=False,
            enable_docs_url=False,
            enable_latency_logging=False,
            grace_period=grace_period,
        )
        self.dataplane = RegistryDataPlane(model_registry=self.registered_models)
        self.host = host
        self.max_body_bytes = max_body_bytes

    def start(self, models: list[RegistryModel]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = BoundRESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            host=self.host,
            max_body_bytes=self.max_body_bytes,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self.servers.append(self._rest_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())
