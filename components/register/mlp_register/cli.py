"""``mlp-register``: register a trained, evaluated model as a new registry version."""

from __future__ import annotations

import argparse
import json

from mlp_common.files import dumps_json, write_text_atomic
from mlp_common.step import StepCli

from mlp_register.core import register


def _images(text: str) -> dict[str, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise argparse.ArgumentTypeError("expected a JSON object of step -> image strings")
    return {str(k): v for k, v in document.items()}


DESCRIPTION = (
    "Register a model directory and its evaluation as the next version of a "
    "model (atomic; the new version becomes 'latest'). Prints the version's metadata."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", required=True, help="registry root (path or file:// URI)")
    parser.add_argument("--name", required=True, help="model name (DNS-1123)")
    parser.add_argument("--model", required=True, help="model directory (mlp-train)")
    parser.add_argument("--evaluation", required=True, help="evaluation directory (mlp-evaluate)")
    parser.add_argument("--dataset", required=True, help="dataset directory (mlp-ingest)")
    parser.add_argument("--statistics", help="statistics.json of the training data (mlp-validate)")
    parser.add_argument("--run-id", default="manual", help="pipeline run id (default: manual)")
    parser.add_argument(
        "--source", default="", help="the ingest source (recorded with credentials redacted)"
    )
    parser.add_argument(
        "--query", default="", help="the ingest SQL query (recorded with URL credentials redacted)"
    )
    parser.add_argument(
        "--images",
        type=_images,
        default={},
        help="JSON mapping step -> image reference, recorded when running on a cluster",
    )
    parser.add_argument(
        "--training-key", help="training key of this run (lets later runs reuse this version)"
    )
    parser.add_argument(
        "--apply-gate",
        action="store_true",
        help="also promote to production when the evaluation's gate decision is 'promote'",
    )
    parser.add_argument("--version-file", help="also write the new version number to this file")


def run(args: argparse.Namespace) -> None:
    version = register(
        args.registry,
        args.name,
        args.model,
        args.evaluation,
        args.dataset,
        run_id=args.run_id,
        statistics=args.statistics,
        apply_gate=args.apply_gate,
        source=args.source,
        query=args.query,
        images=args.images,
        training_key=args.training_key,
    )
    if args.version_file:
        write_text_atomic(args.version_file, f"{version.version}\n")
    print(dumps_json(version.metadata), end="")


main = StepCli("register", DESCRIPTION, add_arguments, run).main
"""`mlp-register`: `main(argv) -> int`, the exit status."""
