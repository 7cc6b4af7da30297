"""``drift check`` (one-shot) and ``drift serve`` (long-running /metrics exporter).

Exit codes: 0 done (no drift, or drift without --fail-on-drift), 1 bad input, 2 bad usage,
3 drift detected with --fail-on-drift.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mlp_common.files import write_bytes_atomic
from mlp_common.step import configure_logging, run_step

from mlp_drift.core import DriftError, DriftReport, FloatArray, Thresholds, compare
from mlp_drift.inputs import (
    Columns,
    feature_names,
    matrix_columns,
    payload_rows,
    read_reference,
    request_log_columns,
    rows_to_matrix,
    table_columns,
)
from mlp_drift.metrics import DriftMetrics
from mlp_drift.server import DriftExporter

log = logging.getLogger("drift")

EXIT_DRIFT = 3
REQUEST_LOG_SUFFIXES = {".jsonl", ".log", ".ndjson"}


def _csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-drift",
        description="Feature drift (PSI and KS per feature) of recent data against the training "
        "reference, as a report or as Prometheus gauges.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--reference",
        default=os.environ.get("MLP_DRIFT_REFERENCE"),
        help="training reference: a dataset directory, or a .csv/.parquet path or s3:// URI "
        "(env MLP_DRIFT_REFERENCE)",
    )
    common.add_argument(
        "--features", type=_csv_list, help="comma-separated features (default: all but --target)"
    )
    common.add_argument(
        "--target",
        help="label column to leave out (default: the dataset's target, else 'target')",
    )
    common.add_argument(
        "--psi-threshold",
        type=float,
        default=Thresholds.psi,
        help="flag a feature at PSI >= this (0.2)",
    )
    common.add_argument(
        "--ks-alpha",
        type=float,
        default=Thresholds.ks_alpha,
        help="family-wise KS significance, Bonferroni-split over features (0.05)",
    )
    common.add_argument("--bins", type=int, default=Thresholds.bins, help="PSI quantile bins (10)")
    common.add_argument(
        "--min-samples",
        type=_positive_int,
        default=Thresholds.min_samples,
        help="fewest current rows to judge (100)",
    )
    common.add_argument(
        "--window", type=_positive_int, default=5000, help="newest request-log rows to use (5000)"
    )

    check = sub.add_parser(
        "check", parents=[common], help="compare once, print a JSON report on stdout"
    )
    check.add_argument(
        "--current",
        required=True,
        help="recent data: a dataset directory, a .csv/.parquet batch, or a .jsonl request log",
    )
    check.add_argument("--output", type=Path, help="also write the JSON report here (atomically)")
    check.add_argument(
        "--metrics-file",
        type=Path,
        help="write the gauges in Prometheus text format (textfile collector)",
    )
    check.add_argument(
        "--fail-on-drift", action="store_true", help=f"exit {EXIT_DRIFT} when drift is detected"
    )

    serve = sub.add_parser(
        "serve", parents=[common], help="re-evaluate the request log periodically, serve /metrics"
    )
    serve.add_argument(
        "--request-log",
        type=Path,
        default=os.environ.get("MLP_REQUEST_LOG") or None,
        help="request log written by mlp-serve --request-log (env MLP_REQUEST_LOG); without "
        "it, rows arrive by POST /log from KServe's payload logger and the newest --window rows "
        "are kept in memory",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=1 << 20,
        help="POST /log bodies over this get 413 (default 1 MiB)",
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("MLP_DRIFT_HOST") or "127.0.0.1",
        help="bind address (env MLP_DRIFT_HOST; default 127.0.0.1)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=os.environ.get("MLP_DRIFT_PORT") or "8000",
        help="HTTP port for /metrics, /log and the probes (env MLP_DRIFT_PORT; default 8000)",
    )
    serve.add_argument(
        "--interval", type=float, default=60.0, help="seconds between evaluations (default 60)"
    )
    return parser


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(
        psi=args.psi_threshold, ks_alpha=args.ks_alpha, bins=args.bins, min_samples=args.min_samples
    )


def _load_reference(args: argparse.Namespace) -> tuple[Columns, list[str]]:
    frame, dataset_target = read_reference(args.reference)
    names = feature_names(frame, args.features, args.target or dataset_target or "target")
    return table_columns(frame, names, args.reference), names


def _load_current(location: str, names: list[str], window: int) -> Columns:
    path = Path(location)
    if path.suffix.lower() in REQUEST_LOG_SUFFIXES:
        if not path.is_file():
            raise DriftError(f"{path}: no such file")
        return request_log_columns(path, names, window)
    frame, _ = read_reference(location)
    feature_names(frame, names, None)  # every reference feature must be present
    return table_columns(frame, names, location)


def _check(args: argparse.Namespace) -> int:
    thresholds = _thresholds(args)
    reference, names = _load_reference(args)
    current = _load_current(args.current, names, args.window)
    report = compare(reference, current, thresholds)
    document = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    if args.output:
        write_bytes_atomic(args.output, document.encode())
    if args.metrics_file:
        metrics = DriftMetrics()
        metrics.update(report, time.time())
        write_bytes_atomic(args.metrics_file, metrics.exposition())
    sys.stdout.write(document)
    _log_summary(report)
    if report.drift_detected and args.fail_on_drift:
        return EXIT_DRIFT
    return 0


def _log_summary(report: DriftReport) -> None:
    if not report.sufficient:
        log.warning(
            "only %d current rows (< %d): no drift decision",
            report.current_samples,
            report.thresholds.min_samples,
        )
    elif report.drift_detected:
        log.warning("drift detected in: %s", ", ".join(report.drifted_features))


def _serve(args: argparse.Namespace) -> int:
    thresholds = _thresholds(args)
    reference, names = _load_reference(args)  # a bad reference fails at start, not per interval

    pushed: deque[FloatArray] = deque(maxlen=args.window)  # rows from POST /log
    pushed_lock = threading.Lock()

    def receive(document: Any) -> None:
        rows = payload_rows(document)
        matrix = rows_to_matrix((("request", row) for row in rows), names)
        with pushed_lock:
            pushed.extend(matrix)

    def evaluate() -> DriftReport:
        if args.request_log is not None:
            if args.request_log.is_file():
                current = request_log_columns(args.request_log, names, args.window)
            else:
                current = {name: reference[name][:0] for name in names}
        else:
            with pushed_lock:
                rows = list(pushed)
            matrix = np.array(rows) if rows else np.empty((0, len(names)))
            current = matrix_columns(matrix, names)
        return compare(reference, current, thresholds)

    try:
        exporter = DriftExporter(
            evaluate,
            args.host,
            args.port,
            args.interval,
            sink=receive if args.request_log is None else None,
            max_body_bytes=args.max_body_bytes,
        )
    except OSError as exc:
        raise DriftError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    exporter.start()
    host, port = exporter.address
    log.warning("drift exporter on http://%s:%d/metrics (every %gs)", host, port, args.interval)
    stop.wait()
    exporter.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.reference:
        parser.error("--reference (or MLP_DRIFT_REFERENCE) is required")
    configure_logging(args.verbose)
    return run_step("drift", lambda: _check(args) if args.command == "check" else _serve(args))
