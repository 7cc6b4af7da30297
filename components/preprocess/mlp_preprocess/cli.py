"""``mlp-preprocess``: the train/val/test split by row hash and the feature description."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from mlp_common.dataset import fetch_checked, read_snapshot_info
from mlp_common.files import atomic_directory, dumps_json, write_json_atomic
from mlp_common.seeds import DEFAULT_SEED, set_global_seed
from mlp_common.step import DataError, StepCli, StepError, add_registry_source
from mlp_common.storage import is_remote, localize_directory, upload_directory

from mlp_preprocess.streaming import split_dataset

FEATURES_FILE = "features.json"


DESCRIPTION = (
    "Split a dataset into train/val/test Parquet files by a stable hash of each row's key "
    "and write features.json (feature order, classes, training mean/variance)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_registry_source(
        parser,
        ("--dataset", "dataset directory or snapshot written by mlp-ingest"),
        (
            "--dataset-from-registry",
            "the snapshot --model --version in this model registry was trained from (its "
            "dataset.snapshot_uri), checked against the hashes the version recorded",
        ),
        "latest",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="directory to write (path or s3:// URI, e.g. Katib's --data)",
    )
    parser.add_argument("--test-size", type=float, default=0.2, help="test share (default 0.2)")
    parser.add_argument(
        "--val-size", type=float, default=0.2, help="validation share (default 0.2)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="global seed (default 42; rows do not move)"
    )
    parser.add_argument(
        "--engine",
        choices=("streaming", "spark"),
        default="streaming",
        help="streaming: two passes over batches in this process (default); spark: a PySpark job "
        "(the same split), local[*] in this step unless --spark-master says otherwise",
    )
    parser.add_argument(
        "--spark-master",
        default=None,
        help="Spark master URL (default: spark-submit's when it runs the step, else local[*])",
    )
    parser.add_argument(
        "--id-column",
        default="",
        help="column whose value keys each row's split (default: the row's content); not a feature",
    )


def registry_snapshot(registry: str, model: str, version: str) -> Path:
    """A local copy of the snapshot version ``version`` of ``model`` was trained from (the
    pipeline's ingest wrote it), every file checked against the hashes the version recorded."""
    from mlp_common.registry import ModelRegistry, RegistryError

    try:
        number, metadata = ModelRegistry(registry).metadata(model, version)
    except RegistryError as exc:
        raise StepError(f"--dataset-from-registry {registry}: {exc}") from exc
    where = f"--dataset-from-registry {registry}: {model} version {number}"
    recorded = metadata.get("dataset") or {}
    uri, files = recorded.get("snapshot_uri"), recorded.get("files") or {}
    if not uri or not files:
        raise StepError(
            f"{where} ({version}) records no dataset snapshot with file hashes: it was "
            "registered from a dataset directory; run the pipeline to register a version that does"
        )
    local = fetch_checked(uri, files, where, "the version recorded")
    info = read_snapshot_info(str(local))
    if info is None or info.content_hash != recorded.get("content_hash"):
        found = None if info is None else info.content_hash
        raise DataError(
            f"{where}: {uri} holds {found}, the version recorded {recorded.get('content_hash')}"
        )
    return local


def run(args: argparse.Namespace) -> None:
    set_global_seed(args.seed)
    if args.dataset_from_registry:
        if not args.model:
            raise StepError("--dataset-from-registry needs --model")
        dataset = registry_snapshot(args.dataset_from_registry, args.model, args.version)
    else:
        dataset = localize_directory(args.dataset)
    remote = is_remote(args.output)
    with contextlib.ExitStack() as stack:
        local = stack.enter_context(tempfile.TemporaryDirectory()) if remote else args.output
        with atomic_directory(Path(local) / "out" if remote else local) as tmp:
            options = {
                "test_size": args.test_size,
                "val_size": args.val_size,
                "seed": args.seed,
                "id_column": args.id_column or None,
            }
            if args.engine == "spark":
                from mlp_preprocess.spark import split_on_spark

                description = split_on_spark(dataset, tmp, master=args.spark_master, **options)
            else:
                description = split_dataset(dataset, tmp, **options)
            info = read_snapshot_info(str(dataset))
            assert info is not None  # split_dataset read it
            description["dataset"] = info.to_dict()
            write_json_atomic(tmp / FEATURES_FILE, description)
        if remote:  # e.g. the --data of Katib trials
            upload_directory(Path(local) / "out", args.output, marker=FEATURES_FILE)
    print(dumps_json(description["splits"]), end="")


main = StepCli("preprocess", DESCRIPTION, add_arguments, run).main
"""`mlp-preprocess`: `main(argv) -> int`, the exit status."""
