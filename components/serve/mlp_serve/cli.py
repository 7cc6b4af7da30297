"""``mlp-serve``: serve a registry model version with KServe (v1 + v2 REST), hot-reloading it.

Every option has an environment variable (for the Deployment) and a local default:

=========================  ==========================  =====================================
option                     environment                 default
=========================  ==========================  =====================================
--registry                 MLP_REGISTRY                .run/registry
--model                    MLP_MODEL                   the registry's only model
--model-version            MLP_MODEL_VERSION           production (followed); a number is pinned
--host                     MLP_SERVE_HOST              127.0.0.1 (use 0.0.0.0 in a pod)
--port                     MLP_SERVE_PORT              8080
--max-body-bytes           MLP_MAX_BODY_BYTES          1048576 (larger bodies get 413)
--poll-interval            MLP_POLL_INTERVAL           30 seconds between registry checks; 0 = off
--request-log              MLP_REQUEST_LOG             off (JSON Lines for mlp-drift)
--max-batch-size           MLP_MAX_BATCH_SIZE          32 rows per TensorFlow call
--max-batch-delay-ms       MLP_MAX_BATCH_DELAY_MS      1.0 ms a batch may wait for company
--threads                  MLP_THREADS                 the CPU limit (cgroup cpu.max, affinity)
=========================  ==========================  =====================================
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from mlp_common.registry import ModelRegistry, RegistryError
from mlp_common.step import configure_logging, run_step

log = logging.getLogger("mlp_serve")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _non_negative(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int | float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-serve",
        description="Serve a model version from the registry over the KServe v1 and v2 REST "
        "protocols, with /metrics, probes, a payload limit and hot reload of new versions.",
    )
    parser.add_argument(
        "--registry",
        default=_env("MLP_REGISTRY", ".run/registry"),
        help="registry root: a path or s3:// URI (env MLP_REGISTRY; default .run/registry)",
    )
    parser.add_argument(
        "--model",
        "--model-name",
        default=os.environ.get("MLP_MODEL"),
        help="model name (env MLP_MODEL; default: the registry's only model)",
    )
    parser.add_argument(
        "--version",
        "--model-version",
        default=_env("MLP_MODEL_VERSION", "production"),
        help="version to serve: N, latest or production (env MLP_MODEL_VERSION; default "
        "production). A number pins it: the server never switches. A pointer is followed: "
        "each poll reloads when that pointer, and only that one, names another version",
    )
    parser.add_argument(
        "--host",
        default=_env("MLP_SERVE_HOST", "127.0.0.1"),
        help="bind address (env MLP_SERVE_HOST; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        "--http-port",
        type=_port,
        default=_port(_env("MLP_SERVE_PORT", "8080")),
        help="HTTP port (env MLP_SERVE_PORT; default 8080)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_non_negative(int),
        default=int(_env("MLP_MAX_BODY_BYTES", "1048576")),
        help="larger request bodies get 413 (default 1 MiB)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_non_negative(float),
        default=float(_env("MLP_POLL_INTERVAL", "30")),
        help="seconds between registry checks for a new version; 0 = never",
    )
    parser.add_argument(
        "--request-log",
        type=Path,
        default=os.environ.get("MLP_REQUEST_LOG"),
        help="append served feature rows here as JSON Lines for mlp-drift",
    )
    parser.add_argument(
        "--request-log-max-bytes",
        type=_non_negative(int),
        default=64 << 20,
        help="rotate the request log to <log>.1 past this size (default 64 MiB)",
    )
    parser.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=_positive_int(_env("MLP_MAX_BATCH_SIZE", "32")),
        help="most rows gathered into one TensorFlow call (env MLP_MAX_BATCH_SIZE; default 32)",
    )
    parser.add_argument(
        "--max-batch-delay-ms",
        type=_non_negative(float),
        default=float(_env("MLP_MAX_BATCH_DELAY_MS", "1.0")),
        help="longest a request waits for others to share its call, in ms; a lone client "
        "never waits (env MLP_MAX_BATCH_DELAY_MS; default 1.0; 0 = no waiting)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=int(_env("MLP_THREADS", "0")) or None,
        help="concurrent TensorFlow calls and TensorFlow's own pool sizes (env MLP_THREADS; "
        "default: the container's CPU limit from cgroup cpu.max and the affinity mask)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=30,
        help="seconds to finish in-flight requests on SIGTERM (default 30)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    return parser


def model_name(registry: ModelRegistry, requested: str | None) -> str:
    if requested:
        return requested
    models = registry.list_models()
    if len(models) == 1:
        return models[0]
    if not models:
        raise RegistryError(
            f"{registry.root}: no registered model (run `make pipeline`, or pass --registry)"
        )
    raise RegistryError(f"{registry.root}: several models ({', '.join(models)}); pass --model")


def _serve(args: argparse.Namespace) -> int:
    registry = ModelRegistry(args.registry)
    name = model_name(registry, args.model)
    registry.resolve(name, args.version)  # a clear error before the heavy imports

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter
    # kserve.model_server parses sys.argv when imported; keep our flags away from its parser.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        from fastapi.exceptions import FastAPIDeprecationWarning

        # KServe 0.21 answers with ORJSONResponse, which FastAPI deprecates; not ours to fix.
        warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)

        from mlp_serve.batching import BatchSettings
        from mlp_serve.cpu_limit import available_cpus
        from mlp_serve.model import RegistryModel, configure_tensorflow
        from mlp_serve.request_log import RequestLog
        from mlp_serve.server import BoundModelServer
    finally:
        sys.argv = argv

    request_log = None
    if args.request_log:
        request_log = RequestLog(args.request_log, name, args.request_log_max_bytes)
    threads = args.threads or available_cpus()
    configure_tensorflow(threads)
    batching = BatchSettings(
        max_batch_size=args.max_batch_size,
        max_delay=args.max_batch_delay_ms / 1000,
        workers=threads,
    )
    model = RegistryModel(name, registry, args.version, request_log, batching)
    model.load()
    # Everything imported and loaded so far (TensorFlow, Keras, KServe: about a million objects)
    # lives for the whole process: move it out of the collector's reach, so a full collection
    # does not stall the event loop for tens of milliseconds (seen as p99 spikes under load).
    gc.freeze()
    if args.poll_interval > 0 and not model.pinned:
        model.watch(args.poll_interval)
    server = BoundModelServer(
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        grace_period=args.grace_period,
        threads=threads,
    )
    log.warning(
        "serving %s version %d (%s) on http://%s:%d; %d thread(s), batches of <= %d rows, "
        "<= %g ms wait",
        name,
        model.current.version if model.current else -1,
        args.version,
        args.host,
        args.port,
        threads,
        batching.max_batch_size,
        args.max_batch_delay_ms,
    )
    try:
        server.start([model])
    finally:
        model.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    return run_step("serve", lambda: _serve(args))
