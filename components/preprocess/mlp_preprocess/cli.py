"""``mlp-preprocess``: the train/val/test split by row hash and the feature description."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

from mlp_common.dataset import read_snapshot_info
from mlp_common.files import atomic_directory, dumps_json, write_json_atomic
from mlp_common.seeds import DEFAULT_SEED, set_global_seed
from mlp_common.step import StepCli
from mlp_common.storage import is_remote, localize_directory, upload_directory

from mlp_preprocess.streaming import split_dataset

FEATURES_FILE = "features.json"


DESCRIPTION = (
    "Split a dataset into train/val/test Parquet files by a stable hash of each row's key "
    "and write features.json (feature order, classes, training mean/variance)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset directory written by mlp-ingest")
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


def run(args: argparse.Namespace) -> None:
    set_global_seed(args.seed)
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
