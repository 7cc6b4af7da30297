"""``mlp-evaluate``: held-out metrics, confusion matrix plot and the promotion gate."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mlp_common.files import dumps_json
from mlp_common.step import configure_logging, run_step
from mlp_common.storage import localize_directory

from mlp_evaluate.core import GATE_METRICS, GatePolicy, evaluate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-evaluate",
        description="Evaluate a model directory on the test split, compare it with the production "
        "model and the scikit-learn baseline on the same rows (paired bootstrap), and decide "
        "promote/candidate/refused. Writes evaluation.json, gate.json "
        "and confusion_matrix.png.",
    )
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
        "--margin", type=float, default=0.0, help="required improvement over production (0.0)"
    )
    parser.add_argument("--min-score", type=float, default=0.0, help="absolute floor (0.0)")
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="interval confidence (0.95, two-sided)"
    )
    parser.add_argument(
        "--resamples", type=int, default=2000, help="paired bootstrap resamples (2000)"
    )
    parser.add_argument("--gate-seed", type=int, default=0, help="bootstrap seed (0)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

    def body() -> int:
        policy = GatePolicy(
            metric=args.metric,
            margin=args.margin,
            min_score=args.min_score,
            confidence=args.confidence,
            resamples=args.resamples,
            seed=args.gate_seed,
        )
        data = localize_directory(args.data)
        result = evaluate(
            args.model,
            data,
            args.output,
            policy,
            args.production_model,
            args.production_version,
        )
        gate = result["gate"]
        print(f"evaluate: {gate['verdict']}: {gate['reason']}", file=sys.stderr)
        summary = {k: result["metrics"][k] for k in ("accuracy", "f1_macro", "f1_weighted")}
        print(dumps_json(summary | {"decision": gate["decision"]}), end="")
        return 0

    return run_step("evaluate", body)
