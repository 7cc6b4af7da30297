"""``mlp-pipeline``: compile, check, run locally, or submit the training pipeline.

mlp-pipeline compile              write pipelines/compiled/ (IR + v2beta1 objects)
mlp-pipeline check                exit 1 if pipelines/compiled/ is stale
mlp-pipeline run                  run locally with kfp.local and print a summary
mlp-pipeline submit --host URL --pipeline P --pipeline-version V
                                  submit one run of the deployed PipelineVersion
mlp-pipeline schedule --host URL --pipeline P --pipeline-version V --schedule CRON --name N
                                  keep one KFP recurring run of it (idempotent)
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

    submit = commands.add_parser("submit", help="submit one run of the deployed pipeline")
    _deployed_arguments(submit)
    submit.add_argument("--run-name", help="run name (default: <pipeline-version>-<utc>)")
    submit.add_argument(
        "--wait", action="store_true", help="wait for the run; fail unless it succeeds"
    )
    submit.add_argument("--timeout", type=int, default=6600, help="seconds to --wait (6600)")

    schedule = commands.add_parser(
        "schedule", help="keep one KFP recurring run of the deployed pipeline (idempotent)"
    )
    _deployed_arguments(schedule)
    schedule.add_argument(
        "--schedule", required=True, help="cron, five fields, UTC (e.g. '0 3 * * 1')"
    )
    schedule.add_argument(
        "--name", required=True, help="marks the recurring runs this schedule owns"
    )
    schedule.add_argument(
        "--disabled", action="store_true", help="create it disabled (a suspended environment)"
    )
    return parser


def _deployed_arguments(parser: argparse.ArgumentParser) -> None:
    """What names the deployed PipelineVersion (the generator passes these)."""
    parser.add_argument("--host", required=True, help="KFP API URL, e.g. http://ml-pipeline:8888")
    parser.add_argument("--pipeline", required=True, help="Pipeline name (metadata.name)")
    parser.add_argument(
        "--pipeline-version", required=True, help="PipelineVersion name (metadata.name)"
    )
    parser.add_argument("--namespace", help="namespace of the pipeline (multi-user mode)")
    parser.add_argument("--experiment", default="mlp-training", help="experiment name")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline argument"
    )
    parser.add_argument(
        "--wait-for-version",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait this long for KFP to reconcile the PipelineVersion (0)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be done; contact nothing"
    )


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
        from mlp_pipeline.schedule import Target, parse_params, schedule, submit

        target = Target(
            host=args.host,
            pipeline=args.pipeline,
            version=args.pipeline_version,
            namespace=args.namespace,
            experiment=args.experiment,
            arguments=parse_params(args.param),
            wait_for_version=args.wait_for_version,
        )
        described = target.describe()
        if args.command == "schedule":
            described.update(schedule=args.schedule, name=args.name, enabled=not args.disabled)
        print(json.dumps(described, indent=2, sort_keys=True))
        if args.dry_run:
            return 0
        if args.command == "schedule":
            print(schedule(target, args.name, args.schedule, enabled=not args.disabled))
        else:
            wait = args.timeout if args.wait else None
            print(f"run id: {submit(target, run_name=args.run_name, wait_seconds=wait)}")
        return 0

    return run_step("pipeline", body)
