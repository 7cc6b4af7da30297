"""The ML pipeline: the local run end to end and per step, the tf.data input pipeline against
NumPy feeding, and what 10x data and a second worker do to training (``mlp_train.scaling``).

- **End to end**: ``mlp_pipeline.local.run_local`` (what ``make pipeline`` runs: kfp.local,
  one subprocess per step) into a fresh registry each repetition, so every run ingests,
  validates, preprocesses, trains, evaluates and registers (nothing is reused). Wall seconds of
  the whole run, CPU seconds of its step processes, and each step's own seconds from
  ``steps.jsonl`` (inside the step, without process start-up).
- **Input pipeline**: on the default data preprocessed once (``mlp-ingest`` + ``mlp-preprocess``,
  as ``make train-scaling`` does), the train step's model (``mlp_train.core.build_model``) is fit
  for the same epochs from ``mlp_train.core.dataset`` (tf.data: slices, shuffle, batch,
  prefetch) and from the NumPy arrays directly (``model.fit(x, y, batch_size=...)``), after one
  warm-up epoch each; examples/s = training rows x epochs / seconds. Iterating the tf.data
  pipeline alone (no model) bounds what the input side can feed.
- **Scaling**: ``mlp_train.scaling.enlarge`` and ``measure`` (the code behind
  ``make train-scaling``; not duplicated here) on the default data and a 10x enlargement, with 1
  and 2 local workers: fit seconds, examples/s and peak RSS per worker and in total.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import Result


@dataclass
class Options:
    repeat: int
    epochs: int
    """Epochs of the end-to-end pipeline run (its default: 60, with early stopping)."""
    fit_epochs: int
    """Epochs per input-pipeline measurement."""
    scaling_epochs: int
    scaling_factor: int
    scaling_workers: tuple[int, ...]
    scaling_repeat: int


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def end_to_end(
    workdir: Path, epochs: int | None
) -> tuple[float, float, dict[str, float], bool, str]:
    """One local pipeline run into a fresh registry: (wall s, CPU s of the step processes,
    seconds per step, succeeded, error)."""
    from mlp_pipeline.local import new_run_dir, run_local

    registry = workdir / "registry"
    arguments: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
    cpu, start = _children_cpu(), time.perf_counter()
    summary = run_local(
        new_run_dir(workdir / "runs"), registry, arguments, datasets=workdir / "datasets"
    )
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    steps: dict[str, float] = defaultdict(float)
    for attempt in summary.attempts:
        steps[attempt["step"]] += attempt["seconds"]
    return wall, cpu, dict(steps), summary.succeeded, summary.error


def prepare(workdir: Path) -> Path:
    """The default data, ingested and preprocessed by the step CLIs (make train-scaling's)."""
    bin_dir = Path(sys.executable).parent
    dataset, prep = workdir / "dataset", workdir / "prep"
    for argv in (
        [str(bin_dir / "mlp-ingest"), "--output", str(dataset)],
        [str(bin_dir / "mlp-preprocess"), "--dataset", str(dataset), "--output", str(prep)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return prep


def input_pipeline(prep: Path, epochs: int, seed: int = 42) -> dict[str, float]:
    """Examples/s of one fit from tf.data and one from NumPy arrays, and of tf.data alone."""
    import tensorflow as tf
    from mlp_common.files import read_json
    from mlp_train.core import HyperParameters, build_model, dataset, load_split

    description = read_json(prep / "features.json")
    x, y = load_split(prep, "train", description["features"])
    params = HyperParameters(seed=seed)
    rows = len(x)
    out: dict[str, float] = {"rows": rows, "batch_size": params.batch_size}

    def timed_fit(feed: str) -> float:
        tf.keras.utils.set_random_seed(seed)
        model = build_model(description, params)

        def fit(n: int) -> None:
            if feed == "tf.data":
                data = dataset(x, y, params.batch_size, shuffle=True, seed=seed)
                model.fit(data, epochs=n, shuffle=False, verbose=0)
            else:
                model.fit(x, y, batch_size=params.batch_size, epochs=n, shuffle=True, verbose=0)

        fit(1)  # tracing and the first epoch's set-up are not the input pipeline
        start = time.perf_counter()
        fit(epochs)
        return rows * epochs / (time.perf_counter() - start)

    out["tf.data"] = timed_fit("tf.data")
    out["numpy"] = timed_fit("numpy")
    data = dataset(x, y, params.batch_size, shuffle=True, seed=seed)
    for _ in data:  # warm-up pass
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in data:
            pass
    out["tf.data alone"] = rows * epochs / (time.perf_counter() - start)
    return out


def run(options: Options) -> Result:
    result = Result(
        name="pipeline",
        title="The ML pipeline (local run, input pipeline, training scaling)",
        conditions=(
            f"{options.repeat} local pipeline run(s) end to end (kfp.local, one process per step,"
            f" a fresh registry each, epochs {'default' if options.epochs <= 0 else options.epochs}"
            f"); input pipeline: {options.repeat} fit(s) of {options.fit_epochs} epochs per feed "
            f"after a warm-up epoch; scaling: {options.scaling_repeat} run(s) per row "
            f"(mlp_train.scaling, {options.scaling_epochs} epochs, early stopping off, "
            f"{options.scaling_factor}x enlargement, workers {list(options.scaling_workers)})."
        ),
        settings={
            "repeat": options.repeat,
            "epochs": options.epochs if options.epochs > 0 else "pipeline default",
            "fit_epochs": options.fit_epochs,
            "scaling_epochs": options.scaling_epochs,
            "scaling_factor": options.scaling_factor,
            "scaling_workers": list(options.scaling_workers),
            "scaling_repeat": options.scaling_repeat,
        },
        plot={"title": "seconds per pipeline step (median)", "x": "step",
              "y": "seconds", "metric": "seconds", "bar": True, "groups": ["steps"]},
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        walls, cpus, per_step = [], [], defaultdict(list)
        for index in range(options.repeat):
            workdir = tmp / f"e2e-{index}"
            wall, cpu, steps, ok, error = end_to_end(
                workdir, options.epochs if options.epochs > 0 else None
            )
            if not ok:
                raise RuntimeError(f"local pipeline run failed: {error} (in {workdir})")
            walls.append(wall)
            cpus.append(cpu)
            for step, seconds in steps.items():
                per_step[step].append(seconds)
            shutil.rmtree(workdir, ignore_errors=True)
        result.add("end to end", "local pipeline (make pipeline)", 0, "wall_s", "s", walls)
        result.add("end to end", "local pipeline (make pipeline)", 0, "cpu_s", "s", cpus)
        from mlp_pipeline.local import STEP_ORDER

        for step in sorted(per_step, key=lambda s: (STEP_ORDER + (s,)).index(s)):
            result.add("steps", step, 0, "seconds", "s", per_step[step])
        total = sum(sorted(v)[len(v) // 2] for v in per_step.values())
        result.notes.append(
            f"The steps' own seconds add up to about {total:.0f} s of the "
            f"{sorted(walls)[len(walls) // 2]:.0f} s end-to-end wall time (medians); the rest is "
            "kfp.local starting one Python process per step (each importing its libraries) "
            "and moving artifacts between them."
        )

        prep = prepare(tmp / "data")
        feeds: dict[str, list[float]] = defaultdict(list)
        rows = 0
        for _ in range(options.repeat):
            measured = input_pipeline(prep, options.fit_epochs)
            rows = int(measured["rows"])
            for feed in ("tf.data", "numpy", "tf.data alone"):
                feeds[feed].append(measured[feed])
        labels = {
            "tf.data": "fit from tf.data (the train step)",
            "numpy": "fit from NumPy arrays",
            "tf.data alone": "tf.data pipeline alone (no model)",
        }
        for feed, values in feeds.items():
            result.add("input pipeline", labels[feed], rows, "examples_per_s", "examples/s", values)
        ratio = [a / b for a, b in zip(feeds["tf.data"], feeds["numpy"], strict=True)]
        result.add("input pipeline", "tf.data / NumPy", rows, "ratio", "x", ratio)
        result.notes.append(
            f"Input pipeline on {rows} training rows: the train step's tf.data feed trains at "
            f"{sorted(ratio)[len(ratio) // 2]:.2f}x the examples/s of feeding the NumPy arrays "
            "to `fit` (median of paired runs); the tf.data pipeline alone delivers "
            f"{sorted(feeds['tf.data alone'])[len(ratio) // 2]:,.0f} examples/s, so the model's "
            "steps, not the input, bound training at this size."
        )

        scaling(result, prep, tmp / "scaling", options)
    return result


def scaling(result: Result, prep: Path, workdir: Path, options: Options) -> None:
    """1 vs N workers on the default data and a ``factor``x enlargement (mlp_train.scaling)."""
    from mlp_train.scaling import enlarge, measure

    workdir.mkdir(parents=True)
    factor = options.scaling_factor
    big = enlarge(prep, workdir / f"data-x{factor}", factor, seed=42)
    rows: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for label, data in (("default data", prep), (f"{factor}x data", big)):
        for workers in options.scaling_workers:
            for index in range(options.scaling_repeat):
                run_dir = workdir / f"{label.split()[0]}-{workers}-{index}"
                rows[(label, workers)].append(
                    measure(data, run_dir, workers, options.scaling_epochs, ())
                )
                shutil.rmtree(run_dir, ignore_errors=True)
    for (label, workers), runs in rows.items():
        series = f"{label}, {workers} worker{'s' if workers > 1 else ''}"
        train_rows = runs[0]["train_rows"]
        for key, metric, unit in (
            ("wall_seconds", "wall_s", "s"),
            ("train_seconds", "fit_s", "s"),
            ("examples_per_second", "examples_per_s", "examples/s"),
            ("peak_rss_mib_per_worker", "peak_rss_mib_per_worker", "MiB"),
            ("peak_rss_mib_total", "peak_rss_mib_total", "MiB"),
            ("val_accuracy", "val_accuracy", "accuracy"),
        ):
            result.add("training scaling", series, train_rows, metric, unit,
                       [r[key] for r in runs])  # fmt: skip
    one = min(options.scaling_workers)
    small = _median(rows[("default data", one)], "train_seconds")
    large = _median(rows[(f"{factor}x data", one)], "train_seconds")
    rss_small = _median(rows[("default data", one)], "peak_rss_mib_per_worker")
    rss_large = _median(rows[(f"{factor}x data", one)], "peak_rss_mib_per_worker")
    result.notes.append(
        f"{factor}x the training rows on one worker: fit time {large / small:.1f}x "
        f"({small:.1f} s -> {large:.1f} s), peak RSS {rss_large / rss_small:.2f}x "
        f"({rss_small:.0f} -> {rss_large:.0f} MiB)."
    )
    more = max(options.scaling_workers)
    if more > one:
        for label in ("default data", f"{factor}x data"):
            a = _median(rows[(label, one)], "train_seconds")
            b = _median(rows[(label, more)], "train_seconds")
            ra = _median(rows[(label, one)], "peak_rss_mib_total")
            rb = _median(rows[(label, more)], "peak_rss_mib_total")
            result.notes.append(
                f"{label}: {more} workers fit in {b:.1f} s against {a:.1f} s for one "
                f"({a / b:.2f}x speed-up) and use {rb:.0f} MiB in total against {ra:.0f} MiB."
            )


def _median(runs: list[dict[str, Any]], key: str) -> float:
    values = sorted(float(r[key]) for r in runs)
    return values[len(values) // 2]
