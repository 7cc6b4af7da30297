"""``mlp-evaluate``: held-out metrics, confusion matrix plot and the promotion gate."""

from __future__ import annotations

import argparse
import sys

from mlp_common.files import dumps_json
from mlp_common.step import TENSORFLOW_ENVIRONMENT, StepCli
from mlp_common.storage import localize_directory

from mlp_evaluate.core import GATE_METRICS, GatePolicy, evaluate

DESCRIPTION = (
    "Evaluate a model directory on the test split, compare it with the production "
    "model and the scikit-learn baseline on the same rows (exact McNemar test with a "
    "declared alpha and power), and decide "
    "promote/candidate/refused. Writes evaluation.json, gate.json "
    "and confusion_matrix.png."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="candidate model directory (mlp-train)")
    parser.add_argument("--data", required=True, help="preprocess output directory")
    parser.add_argument("--output", required=True, help="evaluation directory to write")
    parser.add_argument(
        "--production-model", help="production model directory (absent: first model)"
    )
    parser.add_argument(
        "--production-version",
        type=int,
        help="registry version number of --production-model (recorded in gate.json)",
    )
    parser.add_argument(
        "--metric", default="accuracy", choices=GATE_METRICS, help="gate metric (accuracy)"
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=GatePolicy.alpha,
        help="one-sided false-promotion rate of the paired test (0.05)",
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=GatePolicy.min_effect,
        help="smallest improvement (metric units) the test set must be able to detect (0.02)",
    )
    parser.add_argument(
        "--power",
        type=float,
        default=GatePolicy.required_power,
        help="required power at --min-effect; below it the gate refuses (0.8)",
    )
    parser.add_argument("--min-score", type=float, default=0.0, help="absolute floor (0.0)")
    parser.add_argument(
        "--schema-change",
        action="store_true",
        help="the candidate may change features, their order, dtypes or classes",
    )
    parser.add_argument(
        "--resamples", type=int, default=2000, help="bootstrap resamples for f1_macro (2000)"
    )
    parser.add_argument("--gate-seed", type=int, default=0, help="bootstrap seed (0)")


def run(args: argparse.Namespace) -> None:
    policy = GatePolicy(
        metric=args.metric,
        alpha=args.alpha,
        min_effect=args.min_effect,
        required_power=args.power,
        min_score=args.min_score,
        schema_change=args.schema_change,
        resamples=args.resamples,
        seed=args.gate_seed,
    )
    data = localize_directory(args.data)
    result = evaluate(
        args.model, data, args.output, policy, args.production_model, args.production_version
    )
    gate = result["gate"]
    print(f"evaluate: {gate['verdict']}: {gate['reason']}", file=sys.stderr)
    summary = {k: result["metrics"][k] for k in ("accuracy", "f1_macro", "f1_weighted")}
    print(dumps_json(summary | {"decision": gate["decision"]}), end="")


main = StepCli("evaluate", DESCRIPTION, add_arguments, run, environment=TENSORFLOW_ENVIRONMENT).main
"""`mlp-evaluate`: `main(argv) -> int`, the exit status."""
