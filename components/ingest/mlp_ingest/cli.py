"""``mlp-ingest``: read CSV/Parquet/SQL or a bundled dataset and write a versioned dataset."""

from __future__ import annotations

import argparse

from mlp_common.files import dumps_json, write_text_atomic
from mlp_common.step import StepCli, StepError

from mlp_ingest.core import DEFAULT_SOURCE, default_name, ingest, parse_source

DESCRIPTION = (
    "Read a table and write a versioned dataset directory "
    "(partitioned Parquet + dataset.json with a content hash), in batches."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="sklearn:<wine|breast_cancer|digits|iris>, a CSV/Parquet path or s3:// URI, "
        f"or a SQLAlchemy URL such as sqlite:///data.db (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument("--query", help="SQL query, required with a SQL source")
    parser.add_argument(
        "--format", choices=("csv", "parquet"), help="file format (default: suffix)"
    )
    parser.add_argument("--target", help="label column (default: 'target' for sklearn sources)")
    parser.add_argument(
        "--name",
        help="dataset name recorded in dataset.json (default: the bundled dataset's name, "
        "else 'dataset')",
    )
    parser.add_argument("--output", help="dataset directory to write")
    parser.add_argument(
        "--snapshot-root",
        help="also store an immutable, content-addressed snapshot at <root>/<name>/<hash>/ "
        "(path or s3:// URI); an existing snapshot of the same data is reused",
    )
    parser.add_argument("--uri-file", help="write the snapshot URI to this file")


def run(args: argparse.Namespace) -> None:
    source = parse_source(args.source, query=args.query, fmt=args.format)
    name = args.name or default_name(source)
    info = ingest(
        source, args.output, name=name, target=args.target, snapshot_root=args.snapshot_root
    )
    if args.uri_file:
        if info.uri is None:
            raise StepError("--uri-file needs --snapshot-root")
        write_text_atomic(args.uri_file, info.uri)
    print(dumps_json(info.to_dict()), end="")


main = StepCli("ingest", DESCRIPTION, add_arguments, run).main
"""`mlp-ingest`: `main(argv) -> int`, the exit status."""
