"""``mlp-validate``: check a dataset against a declared schema; stop with a report on bad data."""

from __future__ import annotations

import argparse
import sys

from mlp_common.dataset import iter_dataset
from mlp_common.files import atomic_directory, dumps_json, read_json, write_json_atomic
from mlp_common.step import DataError, StepCli
from mlp_common.storage import localize_directory

from mlp_validate.core import validate_batches
from mlp_validate.schema import load_schema

REPORT_FILE = "report.json"
STATISTICS_FILE = "statistics.json"


DESCRIPTION = (
    "Check a dataset directory against a declared schema (types, ranges, nulls, "
    "class balance, train/serve skew). Exits 1 with a report when any rule fails."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset directory written by mlp-ingest")
    parser.add_argument(
        "--schema",
        help="schema YAML path, or embedded:<name> (digits, wine); default: the embedded schema "
        "named like the dataset (dataset.json name)",
    )
    parser.add_argument(
        "--reference-stats",
        help="statistics.json of the training data the production model saw (enables skew checks)",
    )
    parser.add_argument(
        "--output", required=True, help="directory for report.json and statistics.json"
    )


def run(args: argparse.Namespace) -> None:
    info, batches = iter_dataset(localize_directory(args.dataset))
    reference_name = args.schema or f"embedded:{info.name}"
    schema = load_schema(reference_name)
    reference = read_json(args.reference_stats) if args.reference_stats else None
    report = validate_batches(info.columns, batches, schema, reference)
    if not report.ok:
        raise DataError(report.render(f"dataset {info.name}@{info.version}"))
    document = report.to_dict() | {"dataset": info.to_dict(), "schema": reference_name}
    with atomic_directory(args.output) as tmp:
        write_json_atomic(tmp / REPORT_FILE, document)
        write_json_atomic(tmp / STATISTICS_FILE, report.statistics)
    print(f"validate: {report.checks} checks passed", file=sys.stderr)
    print(dumps_json(report.to_dict()), end="")


main = StepCli("validate", DESCRIPTION, add_arguments, run).main
"""`mlp-validate`: `main(argv) -> int`, the exit status."""
