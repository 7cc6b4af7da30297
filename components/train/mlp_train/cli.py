"""``mlp-train``: train the classifier. Prints ``val_accuracy=<float>`` lines for Katib."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from mlp_common.metrics import katib_lines
from mlp_common.step import TENSORFLOW_ENVIRONMENT, StepCli, StepError, add_registry_source
from mlp_common.storage import localize_directory

from mlp_train import data_source, distributed, run_data
from mlp_train.core import HyperParameters, train

PARAMS = {f.name: f for f in fields(HyperParameters)}


DESCRIPTION = (
    "Train a Keras classifier on a preprocess output directory and write a model "
    "directory (model.keras, saved_model/, metrics.json). The final objective is printed on "
    "stdout as name=value lines (Katib StdOut metrics collector format)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = HyperParameters()
    add_registry_source(
        parser,
        ("--data", "preprocess output directory (path or s3:// URI)"),
        (
            "--data-from-registry",
            "the preprocessed data that trained --model --version in this model registry "
            "(path or s3:// URI), as the version recorded it (Katib trials, make tune)",
        ),
        "production",
    )
    parser.add_argument(
        "--data-uri",
        help="where --data lives, recorded in the model's data.json (the pipeline passes its "
        "Dataset artifact's URI; default: --data)",
    )
    parser.add_argument(
        "--data-pin",
        metavar="FILE",
        help="the run's data pin, on storage every worker reads: the first worker to start "
        "records the data it resolved there, every other worker and every restart trains on "
        "that data, checked against its sha256 (the TrainingRuntime's entrypoint sets it)",
    )
    parser.add_argument("--output", required=True, help="model directory to write")
    parser.add_argument(
        "--config",
        help="YAML mapping of hyperparameters (learning_rate, hidden_units, dropout, epochs, "
        "batch_size, patience, seed); command-line options override it",
    )
    for name, kind in (
        ("learning-rate", float),
        ("hidden-units", int),
        ("dropout", float),
        ("epochs", int),
        ("batch-size", int),
        ("patience", int),
        ("seed", int),
    ):
        default = getattr(defaults, name.replace("-", "_"))
        parser.add_argument(f"--{name}", type=kind, help=f"default {default}")
    parser.add_argument(
        "--backup-dir",
        help="multi-worker runs only (TF_CONFIG set): BackupAndRestore directory that every "
        "worker reads; default <output>.backup",
    )


def resolve_params(args: argparse.Namespace) -> HyperParameters:
    """Defaults, then the --config file, then command-line options."""
    values: dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                document = yaml.safe_load(handle) or {}
        except OSError as exc:
            raise StepError(f"--config {args.config}: {exc.strerror}") from exc
        if not isinstance(document, dict):
            raise StepError(f"--config {args.config}: must be a mapping")
        for key, value in document.items():
            name = str(key).replace("-", "_")
            if name not in PARAMS:
                raise StepError(f"--config {args.config}: {key}: unknown hyperparameter")
            values[name] = value
    for name in PARAMS:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    try:
        return HyperParameters(**values)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise StepError(str(exc)) from exc


def input_data(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The local preprocess output to train on, and its data.json record: the run's pinned
    data with --data-pin (mlp_train.run_data), else the data the options name."""
    if args.data_from_registry is not None and not args.model:
        raise StepError("--data-from-registry needs --model")
    if args.data_pin is None:
        local, resolved = resolve_input(args)
        return local, run_data.record(resolved)
    return run_data.pinned(args.data_pin, data_request(args), lambda: resolve_input(args))


def data_request(args: argparse.Namespace) -> dict[str, str]:
    """The options that name the data (what a run's pin was made for)."""
    if args.data_from_registry is not None:
        return {"registry": args.data_from_registry, "model": args.model, "version": args.version}
    return {"data": args.data}


def resolve_input(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The data the options name, now: (a local copy, its pin without ``request``)."""
    version: int | None = None
    if args.data_from_registry is not None:
        local, uri, version = data_source.resolve(args.data_from_registry, args.model, args.version)
        location = data_source.store_uri(uri)
    else:
        local, uri, location = localize_directory(args.data), args.data_uri or args.data, args.data
    files = data_source.describe(local, uri)["files"]
    return local, {"uri": uri, "files": files, "location": location, "version": version}


def run(args: argparse.Namespace) -> None:
    params = resolve_params(args)
    data, record = input_data(args)
    cluster = distributed.cluster_from_environment()
    if cluster is None:  # no TF_CONFIG: the default strategy, in this process
        metrics = train(data, args.output, params, data_record=record)
    else:
        metrics = distributed.train_distributed(
            data, args.output, params, cluster, args.backup_dir, data_record=record
        )
    print(
        f"train: val_accuracy {metrics['val_accuracy']:.4f} vs baseline "
        f"{metrics['baseline_val_accuracy']:.4f}, {metrics['epochs_run']} epochs, "
        f"{metrics['examples_per_second']:.0f} examples/s",
        file=sys.stderr,
    )
    sys.stdout.write(
        katib_lines({"val_accuracy": metrics["val_accuracy"], "val_loss": metrics["val_loss"]})
    )


main = StepCli("train", DESCRIPTION, add_arguments, run, environment=TENSORFLOW_ENVIRONMENT).main
"""`mlp-train`: `main(argv) -> int`, the exit status."""
