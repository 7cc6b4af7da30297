"""``python -m mlp_train.scaling``: 1 against N local workers, on the default data and on a
synthetic enlargement of it; prints a Markdown table (the README's numbers come from here).

The enlargement keeps the validation split and replaces the training split with ``--factor``
copies of it, each row jittered by Gaussian noise of 5 % of the feature's standard deviation
(seeded), so an epoch has ``factor`` times the rows of the same distribution.

Every run trains the same number of epochs (early stopping off), so the work is the same and
only the parallelism differs. Columns: wall time of the whole run (process start, TensorFlow
import, cluster setup, training, saving), ``train_seconds`` (fit only, from metrics.json),
examples/s (training rows x epochs / train_seconds), and the peak RSS of one worker and of all
workers together (``ru_maxrss`` from ``wait4``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlp_common.files import read_json
from mlp_common.step import StepError, configure_logging, run_step

from mlp_train.core import LABEL
from mlp_train.launch import LocalCluster


def enlarge(prep: Path, out: Path, factor: int, seed: int) -> Path:
    """A copy of the preprocess directory ``prep`` whose train split is ``factor`` times larger."""
    shutil.copytree(prep, out)
    description = read_json(prep / "features.json")
    train = pd.read_parquet(prep / "train.parquet")
    features = description["features"]
    rng = np.random.default_rng(seed)
    scale = 0.05 * train[features].std(ddof=0).to_numpy()
    copies = []
    for _ in range(factor):
        copy = train.copy()
        noise = rng.normal(size=(len(train), len(features))) * scale
        copy[features] = copy[features].to_numpy() + noise.astype(copy[features].dtypes.iloc[0])
        copies.append(copy)
    pd.concat(copies, ignore_index=True).to_parquet(out / "train.parquet", index=False)
    return out


def measure(
    prep: Path, workdir: Path, workers: int, epochs: int, extra: Sequence[str]
) -> dict[str, Any]:
    output = workdir / "model"
    argv = ["--data", str(prep), "--output", str(output), "--epochs", str(epochs)]
    argv += ["--patience", str(epochs), *extra]
    summary = LocalCluster(workers, argv, workdir / "logs").run(max_restarts=0, timeout=3600)
    if not summary["succeeded"]:
        raise StepError(f"{workers} workers on {prep} failed; logs in {workdir / 'logs'}")
    metrics = read_json(output / "metrics.json")
    rss = summary["attempts"][-1]["peak_rss_mib"]
    rows = len(pd.read_parquet(prep / "train.parquet", columns=[LABEL]))
    return {
        "workers": workers,
        "train_rows": rows,
        "wall_seconds": summary["wall_seconds"],
        "train_seconds": metrics["train_seconds"],
        "examples_per_second": round(rows * metrics["epochs_run"] / metrics["train_seconds"], 1),
        "peak_rss_mib_per_worker": max(rss),
        "peak_rss_mib_total": round(sum(rss), 1),
        "val_accuracy": round(metrics["val_accuracy"], 4),
        "global_batch_size": metrics["distribution"]["global_batch_size"],
        "steps_per_epoch": metrics["distribution"]["steps_per_epoch"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | workers | train rows | steps/epoch | wall s | fit s | examples/s "
        "| peak RSS/worker MiB | peak RSS total MiB | val_accuracy |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['workers']} | {r['train_rows']} | {r['steps_per_epoch']} "
            f"| {r['wall_seconds']:.1f} | {r['train_seconds']:.1f} "
            f"| {r['examples_per_second']:.0f} "
            f"| {r['peak_rss_mib_per_worker']:.0f} | {r['peak_rss_mib_total']:.0f} "
            f"| {r['val_accuracy']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp-train-scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="preprocess output directory")
    parser.add_argument("--workdir", required=True, help="scratch directory (replaced)")
    parser.add_argument("--workers", type=int, default=2, help="compared with 1 (default 2)")
    parser.add_argument("--factor", type=int, default=10, help="enlargement (default 10)")
    parser.add_argument("--epochs", type=int, default=20, help="per run (default 20)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        workdir = Path(args.workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        prep = Path(args.data)
        big = enlarge(prep, workdir / f"data-x{args.factor}", args.factor, seed=42)
        rows = []
        for label, data in (("default", prep), (f"{args.factor}x synthetic", big)):
            for workers in (1, args.workers):
                run = workdir / f"{label.split()[0]}-{workers}"
                print(f"scaling: {label}, {workers} worker(s) ...", file=sys.stderr)
                rows.append({"data": label} | measure(data, run, workers, args.epochs, ()))
        sys.stdout.write(table(rows))
        return 0

    return run_step("train-scaling", body)


if __name__ == "__main__":
    raise SystemExit(main())
