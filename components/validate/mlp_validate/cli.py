"""``mlp-validate``: check a dataset against a declared schema; stop with a report on bad data."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlp_common.dataset import read_dataset
from mlp_common.files import atomic_directory, dumps_json, read_json, write_json_atomic
from mlp_common.step import DataError, configure_logging, run_step
from mlp_common.storage import localize_directory

from mlp_validate.core import validate
from mlp_validate.schema import load_schema

REPORT_FILE = "report.json"
STATISTICS_FILE = "statistics.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-validate",
        description="Check a dataset directory against a declared schema (types, ranges, nulls, "
        "class balance, train/serve skew). Exits 1 with a report when any rule fails.",
    )
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
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        frame, info = read_dataset(localize_directory(args.dataset))
        reference_name = args.schema or f"embedded:{info.name}"
        schema = load_schema(reference_name)
        reference = read_json(args.reference_stats) if args.reference_stats else None
        report = validate(frame, schema, reference)
        if not report.ok:
            raise DataError(report.render(f"dataset {info.name}@{info.version}"))
        document = report.to_dict() | {"dataset": info.to_dict(), "schema": reference_name}
        with atomic_directory(args.output) as tmp:
            write_json_atomic(tmp / REPORT_FILE, document)
            write_json_atomic(tmp / STATISTICS_FILE, report.statistics)
        print(f"validate: {report.checks} checks passed", file=sys.stderr)
        print(dumps_json(report.to_dict()), end="")
        return 0

    return run_step("validate", body)
