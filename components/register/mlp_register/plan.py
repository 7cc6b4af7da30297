"""``python -m mlp_register.plan``: decide whether a run must train, or reuse a registered version.

A run is named by its training key (:func:`mlp_common.registry.training_key`): the dataset
snapshot's content hash, every parameter that shapes the model (split and hyperparameters, seeds
included) and the version of the training code
(:func:`mlp_common.provenance.training_code_version`: the git trees of common, ingest, preprocess
and train plus uncommitted changes to them, or the version baked into the image). If the registry
already holds a version with that key, training again would reproduce it bit for bit, so the run
reuses it. This is the pipeline's own cache where KFP's cannot help (kfp.local ignores caching; a
cluster whose cache was cleared). ``--force`` trains anyway (a deliberate retrain; its gate then
reports a tie).

Writes ``plan.json`` ``{"action": "train"|"reuse", "version", "training_key", "reason"}`` and
prints the action (``train`` or ``reuse``) on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from mlp_common.dataset import DatasetInfo, read_snapshot_info
from mlp_common.files import write_json_atomic
from mlp_common.provenance import training_code_version
from mlp_common.registry import ModelRegistry, training_key
from mlp_common.step import StepError, configure_logging, run_step

TRAIN = "train"
REUSE = "reuse"


def plan(
    registry: ModelRegistry,
    model: str,
    dataset: DatasetInfo,
    params: dict[str, Any],
    code_version: str,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """The plan for one run (reads the registry; writes nothing)."""
    key = training_key(dataset.content_hash, params, code_version)
    found = None if force else registry.find_training(model, key)
    if found is not None:
        reason = (
            f"reused version {found.version}: same data snapshot ({dataset.version}), params and "
            f"training code ({code_version}); nothing to train"
        )
        return {"action": REUSE, "version": found.version, "training_key": key, "reason": reason}
    reason = "forced retrain" if force else "no version was trained on these inputs"
    return {"action": TRAIN, "version": None, "training_key": key, "reason": reason}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-plan", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("--registry", required=True, help="registry root (path or URI)")
    parser.add_argument("--name", required=True, help="model name")
    parser.add_argument("--snapshot", required=True, help="dataset snapshot URI (mlp-ingest)")
    parser.add_argument("--params", required=True, help="JSON object of the training params")
    parser.add_argument("--force", action="store_true", help="train even if a version matches")
    parser.add_argument("--output", required=True, help="plan.json to write")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        dataset = read_snapshot_info(args.snapshot)
        if dataset is None:
            raise StepError(f"--snapshot {args.snapshot}: no dataset snapshot there")
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise StepError(f"--params: not JSON: {exc}") from exc
        registry = ModelRegistry(args.registry)
        result = plan(
            registry, args.name, dataset, params, training_code_version(), force=args.force
        )
        write_json_atomic(args.output, result)
        print(f"plan: {result['action']}: {result['reason']}", file=sys.stderr)
        print(result["action"])
        return 0

    return run_step("plan", body)


if __name__ == "__main__":
    raise SystemExit(main())
