"""``mlp-pipeline``: compile, check, run locally, or submit the training pipeline.

mlp-pipeline compile              write pipelines/compiled/ (IR + v2beta1 objects)
mlp-pipeline check                exit 1 if pipelines/compiled/ is stale
mlp-pipeline run                  run locally with kfp.local and print a summary
mlp-pipeline submit --host URL    compile and submit one run to a KFP API (scheduled runs)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlp_common.files import write_json_atomic
from mlp_common.step import StepError, configure_logging, run_step

ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlp-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0)
    commands = parser.add_subparsers(dest="command", required=True)

    compile_cmd = commands.add_parser("compile", help="write the compiled pipeline files")
    compile_cmd.add_argument("--output", help="directory (default: pipelines/compiled)")
    check = commands.add_parser("check", help="fail if the compiled files are stale")
    check.add_argument("--output", help="directory (default: pipelines/compiled)")

    run = commands.add_parser("run", help="run locally with kfp.local and print a summary")
    run.add_argument(
        "--runs", default=str(ROOT / ".run" / "pipeline"), help="folder for run folders"
    )
    run.add_argument(
        "--registry", default=str(ROOT / ".run" / "registry"), help="registry root folder"
    )
    run.add_argument(
        "--datasets",
        help="dataset snapshot root (default: datasets/ next to the registry)",
    )
    run.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline argument"
    )
    run.add_argument(
        "--summary-json", help="also write the run summary as JSON to this file (make demo)"
    )

    submit = commands.add_parser("submit", help="compile and submit one run to a KFP API")
    submit.add_argument("--host", required=True, help="KFP API URL, e.g. http://ml-pipeline:8888")
    submit.add_argument("--experiment", default="mlp-training", help="experiment name")
    submit.add_argument("--run-name", help="run name (default: mlp-training-scheduled-<utc>)")
    submit.add_argument("--namespace", help="Kubeflow profile namespace (multi-user mode)")
    submit.add_argument("--pipeline-root", help="artifact root URI, e.g. s3://bucket/pipelines")
    submit.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline argument"
    )
    submit.add_argument("--package-dir", default="/tmp/mlp-pipeline", help="where to compile")
    submit.add_argument(
        "--dry-run", action="store_true", help="compile and print the submission; do not submit"
    )
    submit.add_argument(
        "--wait", action="store_true", help="wait for the run; fail unless it succeeds"
    )
    submit.add_argument("--timeout", type=int, default=6600, help="seconds to --wait (6600)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        if args.command == "compile":
            from mlp_pipeline.compile import COMPILED_DIR, write

            for path in write(args.output or COMPILED_DIR):
                print(path)
            return 0
        if args.command == "check":
            from mlp_pipeline.compile import COMPILED_DIR, stale

            problems = stale(args.output or COMPILED_DIR)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                raise StepError("compiled pipeline is stale; run `mlp-pipeline compile`")
            return 0
        if args.command == "run":
            from mlp_pipeline.local import new_run_dir, run_local
            from mlp_pipeline.schedule import parse_params

            arguments = parse_params(args.param)
            summary = run_local(
                new_run_dir(args.runs), args.registry, arguments, datasets=args.datasets
            )
            print(summary.render())
            if args.summary_json:
                write_json_atomic(args.summary_json, summary.to_json())
            return 0 if summary.succeeded else 1
        from mlp_pipeline.schedule import build_submission, submit

        submission = build_submission(
            args.host,
            args.package_dir,
            experiment=args.experiment,
            run_name=args.run_name,
            params=args.param,
            namespace=args.namespace,
            pipeline_root=args.pipeline_root,
        )
        print(json.dumps(submission.describe(), indent=2, sort_keys=True))
        if not args.dry_run:
            run_id = submit(submission, wait_seconds=args.timeout if args.wait else None)
            print(f"run id: {run_id}")
        return 0

    return run_step("pipeline", body)
