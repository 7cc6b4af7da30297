"""``drift check`` (one-shot report) and ``drift serve`` (the long-running monitor).

Exit codes: 0 done (no drift, or drift without --fail-on-drift), 1 bad input, 2 bad usage,
3 drift detected with --fail-on-drift.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mlp_common import contracts
from mlp_common.files import write_bytes_atomic
from mlp_common.registry import ModelRegistry
from mlp_common.step import configure_logging, run_step

from mlp_drift.core import DriftError, DriftReport, Thresholds, compare
from mlp_drift.inputs import (
    Columns,
    feature_names,
    read_reference,
    request_log_columns,
    table_columns,
)
from mlp_drift.metrics import DriftMetrics, ObservationMetrics
from mlp_drift.reference import LOCAL_VERSION, RegistryReference, reference_from_table
from mlp_drift.retrain import (
    DRIFT_ALERT,
    KfpSubmitter,
    LocalSubmitter,
    RegistryCooldown,
    RetrainTrigger,
)
from mlp_drift.server import DriftExporter, Monitor, ReferenceSource

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


def _param(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
    return name, text


def _seconds(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-drift",
        description="Feature drift of served data against the training reference: a one-shot "
        "report (PSI and KS per feature), or the long-running monitor that exports per-bin "
        "counters for Prometheus and turns drift alerts into pipeline runs.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    sub = parser.add_subparsers(dest="command", required=True)

    features = argparse.ArgumentParser(add_help=False)
    features.add_argument(
        "--features", type=_csv_list, help="comma-separated features (default: all but --target)"
    )
    features.add_argument(
        "--target",
        help="label column to leave out (default: the dataset's target, else 'target')",
    )

    check = sub.add_parser(
        "check", parents=[features], help="compare once, print a JSON report on stdout"
    )
    check.add_argument(
        "--reference",
        default=os.environ.get("MLP_DRIFT_REFERENCE"),
        help="training reference: a dataset directory, or a .csv/.parquet path or s3:// URI "
        "(env MLP_DRIFT_REFERENCE)",
    )
    check.add_argument(
        "--psi-threshold",
        type=float,
        default=Thresholds.psi,
        help="flag a feature at PSI >= this (0.2)",
    )
    check.add_argument(
        "--ks-alpha",
        type=float,
        default=Thresholds.ks_alpha,
        help="family-wise KS significance, Bonferroni-split over features (0.05)",
    )
    check.add_argument("--bins", type=int, default=Thresholds.bins, help="PSI quantile bins (10)")
    check.add_argument(
        "--min-samples",
        type=_positive_int,
        default=Thresholds.min_samples,
        help="fewest current rows to judge (100)",
    )
    check.add_argument(
        "--window", type=_positive_int, default=5000, help="newest request-log rows to use (5000)"
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
        "serve",
        parents=[features],
        help="count served rows per reference bin for Prometheus; follow the production "
        "model's training statistics; receive Alertmanager webhooks",
    )
    serve.add_argument(
        "--registry",
        default=os.environ.get("MLP_REGISTRY") or None,
        help="model registry root (path or s3:// URI; env MLP_REGISTRY): the reference is the "
        "training statistics of --model's production version, re-read every --interval",
    )
    serve.add_argument("--model", help="registered model name (with --registry)")
    serve.add_argument(
        "--reference",
        help="local override instead of --registry: a dataset directory or a .csv/.parquet "
        "table whose histograms are the reference",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=1 << 20,
        help="POST bodies over this get 413 (default 1 MiB)",
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
        help="HTTP port for /metrics, /log, /alerts and the probes (env MLP_DRIFT_PORT; 8000)",
    )
    serve.add_argument(
        "--alerts-port",
        type=_port,
        default=os.environ.get("MLP_DRIFT_ALERTS_PORT") or None,
        help="receive POST /alerts on this port instead of --port, so only Alertmanager may "
        "reach it (env MLP_DRIFT_ALERTS_PORT)",
    )
    serve.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="seconds between reads of the production pointer (default 60)",
    )
    retrain = serve.add_argument_group("retraining on a drift alert (POST /alerts)")
    retrain.add_argument(
        "--retrain",
        choices=("off", "local", "kfp"),
        default="off",
        help="what a firing drift alert starts: nothing (default), --retrain-command as a local "
        "process, or a run of the deployed pipeline through the KFP API",
    )
    retrain.add_argument(
        "--alert-name",
        default=DRIFT_ALERT,
        help="the drift alert: FeatureDrift, or <Component>FeatureDrift (default FeatureDrift)",
    )
    retrain.add_argument(
        "--retrain-cooldown",
        type=_seconds,
        default=6 * 3600.0,
        help="seconds after a submission during which notifications submit nothing (6h); with "
        "--registry the cooldown is one object in the registry that every replica shares",
    )
    retrain.add_argument(
        "--retrain-param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline argument of the run (repeatable)",
    )
    retrain.add_argument(
        "--retrain-command",
        default="mlp-pipeline run",
        help="--retrain local: the command (shell words, run without a shell; "
        "default 'mlp-pipeline run'); each --retrain-param is added as --param=NAME=VALUE",
    )
    retrain.add_argument(
        "--kfp-host", help="--retrain kfp: the KFP API, e.g. http://ml-pipeline.kubeflow:8888"
    )
    retrain.add_argument(
        "--kfp-pipeline",
        default=os.environ.get(contracts.PIPELINE) or None,
        help=f"--retrain kfp: the Pipeline's name (env {contracts.PIPELINE})",
    )
    retrain.add_argument(
        "--kfp-pipeline-version",
        default=os.environ.get(contracts.PIPELINE_VERSION) or None,
        help="--retrain kfp: the PipelineVersion this environment deploys (by name; env "
        f"{contracts.PIPELINE_VERSION}, which platformgen renders per environment; without "
        "either, the pipeline's newest version)",
    )
    retrain.add_argument(
        "--kfp-namespace",
        default=os.environ.get(contracts.PIPELINE_NAMESPACE) or None,
        help=f"--retrain kfp: the Pipeline's namespace (env {contracts.PIPELINE_NAMESPACE})",
    )
    retrain.add_argument("--kfp-experiment-id", help="--retrain kfp: experiment of the runs")
    return parser


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(
        psi=args.psi_threshold, ks_alpha=args.ks_alpha, bins=args.bins, min_samples=args.min_samples
    )


def _load_reference(args: argparse.Namespace) -> tuple[Columns, list[str]]:
    if not args.reference:
        raise DriftError("--reference (or MLP_DRIFT_REFERENCE) is required")
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


def _source(args: argparse.Namespace) -> ReferenceSource:
    if args.reference:
        local = reference_from_table(args.reference, args.features, args.target)
        return ReferenceSource(lambda: LOCAL_VERSION, lambda _version: local)
    registry = RegistryReference(args.registry, args.model)
    return ReferenceSource(
        lambda: str(registry.production_version()), lambda v: registry.load(int(v))
    )


def _trigger(args: argparse.Namespace) -> RetrainTrigger | None:
    params = dict(args.retrain_param)
    submitter: LocalSubmitter | KfpSubmitter
    if args.retrain == "off":
        return None
    if args.retrain == "local":
        command = shlex.split(args.retrain_command)
        if not command:
            raise DriftError("--retrain-command is empty")
        submitter = LocalSubmitter(command, params)
    else:
        submitter = KfpSubmitter(
            args.kfp_host,
            args.kfp_pipeline,
            args.kfp_namespace,
            params,
            args.kfp_experiment_id,
            version=args.kfp_pipeline_version,
        )
    state = None
    if args.registry and args.model:  # shared by every replica
        state = RegistryCooldown(ModelRegistry(args.registry), args.model, args.retrain_cooldown)
    return RetrainTrigger(submitter, args.retrain_cooldown, args.alert_name, state=state)


def _serve(args: argparse.Namespace) -> int:
    source = _source(args)  # a bad local reference fails at start
    trigger = _trigger(args)
    monitor = Monitor(source, ObservationMetrics())
    try:
        exporter = DriftExporter(
            monitor,
            args.host,
            args.port,
            args.interval,
            trigger=trigger,
            max_body_bytes=args.max_body_bytes,
            alerts_port=args.alerts_port,
        )
    except OSError as exc:
        raise DriftError(f"cannot listen on {args.host}: {exc.strerror}") from exc
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    exporter.start()
    host, port = exporter.address
    log.warning(
        "drift monitor on http://%s:%d/metrics (reference re-read every %gs, retrain %s)",
        host,
        port,
        args.interval,
        args.retrain,
    )
    stop.wait()
    exporter.stop()
    if trigger is not None and isinstance(trigger.submitter, LocalSubmitter):
        trigger.submitter.stop()
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.command == "check":
        return None if args.reference else "--reference (or MLP_DRIFT_REFERENCE) is required"
    if args.reference and (args.registry or args.model):
        return "--reference is a local override: give it or --registry/--model, not both"
    if not args.reference and not (args.registry and args.model):
        return "--registry (or MLP_REGISTRY) and --model are required (or --reference)"
    if args.retrain == "kfp" and not (args.kfp_host and args.kfp_pipeline):
        return "--retrain kfp needs --kfp-host and --kfp-pipeline"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _usage_problem(args)
    if problem:
        parser.error(problem)
    configure_logging(args.verbose)
    return run_step("drift", lambda: _check(args) if args.command == "check" else _serve(args))
