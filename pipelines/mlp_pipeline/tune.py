"""``mlp-tune``: a small local random search over the Katib search space.

Each trial runs the train entrypoint exactly as a Katib trial does: a separate process
``python -m mlp_train --data ... --output ... --learning-rate=<v> ...`` whose stdout is parsed with
Katib's StdOut metrics-collector format (``name=value`` lines). The best trial (by the objective
in :mod:`mlp_train.search_space`) is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlp_common.files import write_json_atomic
from mlp_common.metrics import parse_katib_lines
from mlp_common.step import StepError, configure_logging, run_step
from mlp_train.search_space import OBJECTIVE_METRIC, OBJECTIVE_TYPE, SEARCH_SPACE, sample


def prepare_default_data(workdir: Path) -> Path:
    """Ingest and preprocess the embedded default dataset into ``workdir``."""
    from mlp_ingest.cli import main as ingest_main
    from mlp_preprocess.cli import main as preprocess_main

    dataset, data = workdir / "dataset", workdir / "data"
    if not (data / "features.json").is_file():
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
            if ingest_main(["--output", str(dataset)]) != 0:
                raise StepError("could not ingest the embedded dataset")
            if preprocess_main(["--dataset", str(dataset), "--output", str(data)]) != 0:
                raise StepError("could not preprocess the embedded dataset")
    return data


def trial_command(
    data: Path, output: Path, point: dict[str, str], epochs: int, seed: int
) -> list[str]:
    """The train command line of one trial (Katib style ``--name=value`` arguments)."""
    command = [sys.executable, "-m", "mlp_train", "--data", str(data), "--output", str(output)]
    command += [f"--{name}={value}" for name, value in point.items()]
    return [*command, f"--epochs={epochs}", f"--seed={seed}"]


def run_trial(command: list[str]) -> dict[str, Any]:
    """Run one trial; return its collected metrics (empty when it failed)."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    metrics = parse_katib_lines(result.stdout) if result.returncode == 0 else {}
    error = "" if result.returncode == 0 else (result.stderr.strip().splitlines() or ["?"])[-1]
    return {"metrics": metrics, "seconds": round(time.perf_counter() - started, 1), "error": error}


def tune(data: Path, workdir: Path, trials: int, epochs: int, seed: int) -> dict[str, Any]:
    """Random search: ``trials`` points from the search space, each trained by the train CLI."""
    rng = random.Random(seed)
    results = []
    for index in range(trials):
        point = sample(rng)
        command = trial_command(data, workdir / f"trial-{index}", point, epochs, seed)
        outcome = run_trial(command)
        results.append({"trial": index, "parameters": point, **outcome})
        score = outcome["metrics"].get(OBJECTIVE_METRIC)
        shown = f"{score:.4f}" if score is not None else f"failed: {outcome['error']}"
        print(f"trial {index}: {json.dumps(point, sort_keys=True)} -> {shown}", file=sys.stderr)
    scored = [r for r in results if OBJECTIVE_METRIC in r["metrics"]]
    if not scored:
        raise StepError(f"all {trials} trials failed; last error: {results[-1]['error']}")
    sign = 1 if OBJECTIVE_TYPE == "maximize" else -1
    best = max(scored, key=lambda r: (sign * r["metrics"][OBJECTIVE_METRIC], -r["trial"]))
    return {
        "objective": {"metric": OBJECTIVE_METRIC, "type": OBJECTIVE_TYPE},
        "search_space": [p.name for p in SEARCH_SPACE],
        "trials": results,
        "best": best,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-tune",
        description="Local random search over the Katib search space through the train CLI.",
    )
    parser.add_argument("--data", help="preprocess output (default: the embedded dataset)")
    parser.add_argument("--workdir", default=".run/tune", help="trial outputs (.run/tune)")
    parser.add_argument("--trials", type=int, default=4, help="number of trials (4)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial (20)")
    parser.add_argument("--seed", type=int, default=42, help="search and training seed (42)")
    parser.add_argument(
        "--print-search-space", action="store_true", help="print the Katib shapes as JSON"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        if args.print_search_space:
            from mlp_train import search_space

            document = {
                "objective": search_space.katib_objective(),
                "parameters": search_space.katib_parameters(),
                "trialParameters": search_space.katib_trial_parameters(),
                "trialArguments": search_space.katib_trial_arguments(),
            }
            print(json.dumps(document, indent=2, sort_keys=True))
            return 0
        if args.trials < 1:
            raise StepError(f"--trials {args.trials}: must be >= 1")
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        data = Path(args.data) if args.data else prepare_default_data(workdir)
        report = tune(data, workdir, args.trials, args.epochs, args.seed)
        write_json_atomic(workdir / "tune.json", report)
        best = report["best"]
        print(
            f"best trial {best['trial']}: {OBJECTIVE_METRIC}="
            f"{best['metrics'][OBJECTIVE_METRIC]:.4f} with "
            + " ".join(f"--{k}={v}" for k, v in best["parameters"].items())
        )
        return 0

    return run_step("tune", body)
