"""Data at scale: each step's wall time, rows/s and peak RSS on synthetic data of 1x, 10x and
100x the default rows, every step in its own memory cgroup capped well below the data, and one
end-to-end run of the whole pipeline (ingest, validate, preprocess, train, evaluate, register) on
data at least 5x the largest cap as a table in memory (``make bench BENCH=data``).

Caps: 320 MiB for ingest, validate, preprocess and register; 1024 MiB for train and evaluate,
which import TensorFlow (about 0.7 GiB resident before any data: 0.3 GiB anonymous, 0.4 GiB of
its shared libraries) and stream the rest (bounded tf.data buffers, the baseline's sample of at
most 200,000 rows, a batch of test rows). The end-to-end size is derived from the caps
(:func:`end_to_end_size`: 5,800x, 5.0 GiB, for 1024 MiB). Training work is bounded: one epoch
over every training row at batch size 256 (the pipeline's default trains up to 60 epochs with
early stopping; an epoch's memory does not depend on how many epochs run).

The data is ``bench/synthetic_data.py``'s CSV (the default dataset's schema, deterministic). Each
step runs as its own process, exactly as the pipeline runs it (``python -m mlp_<step>``), in a
fresh memory cgroup (v1 ``memory.limit_in_bytes`` or v2 ``memory.max``, swap off) made for it and
removed after; peak RSS is the process's ``ru_maxrss`` (``wait4``), so it counts the step's own
memory, not the page cache its files pass through. A step the kernel kills for memory fails the
benchmark. Without a writable cgroup hierarchy the steps run uncapped and the conditions say so.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import synthetic_data
from bench.results import ROOT, Result, Target

DATA_DIR = ROOT / ".run" / "data"
STEPS = ("ingest", "validate", "preprocess", "train", "evaluate", "register")
TENSORFLOW_STEPS = ("train", "evaluate")
"""Steps that import TensorFlow (about 0.7 GB resident before any data): their own cap."""
MIB = 1 << 20
FACTOR = 5
"""The end-to-end data is at least this many times every step's cap (issue 23)."""


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (1, 10, 100)
    scale: int | None = None
    """The end-to-end size (x the default rows); default :func:`end_to_end_size` of the caps."""
    cap_mib: int = 320
    tensorflow_cap_mib: int = 1024
    repeat: int = 1

    @property
    def end_to_end(self) -> int:
        if self.scale is not None:
            return self.scale
        return end_to_end_size(max(self.cap_mib, self.tensorflow_cap_mib))


def end_to_end_size(cap_mib: int, factor: int = FACTOR) -> int:
    """The smallest multiple of 100 copies whose table is at least ``factor`` x ``cap_mib``."""
    copies = -(-factor * cap_mib * MIB // synthetic_data.decoded_bytes(1))
    return -(-copies // 100) * 100


@dataclass(frozen=True)
class StepRun:
    step: str
    wall_s: float
    peak_rss_mib: float


def _cgroup_root() -> tuple[Path, str] | None:
    """A writable cgroup hierarchy with the memory controller: (parent, version)."""
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").is_file() and "memory" in (
        v2 / "cgroup.controllers"
    ).read_text():
        return (v2, "v2") if os.access(v2, os.W_OK) else None
    v1 = v2 / "memory"
    if (v1 / "memory.limit_in_bytes").is_file() and os.access(v1, os.W_OK):
        return v1, "v1"
    return None


@contextmanager
def memory_cgroup(limit: int) -> Iterator[tuple[Path | None, str]]:
    """A fresh cgroup limited to ``limit`` bytes (no swap), removed on exit."""
    found = _cgroup_root()
    if found is None:
        yield None, "none"
        return
    parent, version = found
    group = Path(tempfile.mkdtemp(prefix="mlp-bench-data-", dir=parent))
    try:
        if version == "v2":
            (group / "memory.max").write_text(str(limit))
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
        else:
            (group / "memory.limit_in_bytes").write_text(str(limit))
            if (group / "memory.memsw.limit_in_bytes").exists():
                (group / "memory.memsw.limit_in_bytes").write_text(str(limit))
        yield group, version
    finally:
        for _ in range(50):  # the member process has exited; the kernel lets go shortly
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _oom_kills(group: Path, version: str) -> int:
    name = "memory.events" if version == "v2" else "memory.oom_control"
    for line in (group / name).read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def run_step(argv: list[str], cap: int, log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one capped step; raises when it fails or is OOM-killed."""
    with memory_cgroup(cap) as (group, version), log.open("wb") as out:

        def join() -> None:
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))

        start = time.perf_counter()
        process = subprocess_popen(argv, out, join)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        kills = _oom_kills(group, version) if group is not None else 0
    if kills or process.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise RuntimeError(
            f"{' '.join(argv)}: exit {process.returncode}, {kills} OOM kill(s) under a "
            f"{cap // MIB} MiB cap:\n{tail}"
        )
    return elapsed, usage.ru_maxrss / 1024


def subprocess_popen(argv: list[str], out: object, join: Callable[[], None]) -> object:
    import subprocess

    return subprocess.Popen(  # noqa: S603 (argv is ours)
        argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=join, cwd=ROOT
    )


def dataset_path(size: int) -> Path:
    """Where the synthetic CSV of ``size`` copies lives (``make data SIZE=...`` writes it too)."""
    return DATA_DIR / f"digits-{size}x.csv"


@contextmanager
def dataset(size: int, *, keep: bool = True) -> Iterator[Path]:
    """The synthetic CSV of ``size`` copies, written when missing (it is deterministic); one
    this call wrote is deleted afterwards unless ``keep`` (the end-to-end size: gigabytes)."""
    path = dataset_path(size)
    written = not path.is_file()
    if written:
        synthetic_data.write(size, path)
    try:
        yield path
    finally:
        if written and not keep:
            path.unlink(missing_ok=True)


def pipeline(source: Path, caps: dict[str, int], work: Path) -> list[StepRun]:
    """ingest -> validate -> preprocess -> train (one epoch) -> evaluate -> register on the CSV
    ``source``, each step capped at ``caps[step]`` bytes."""
    python = sys.executable
    commands = {
        "ingest": [python, "-m", "mlp_ingest", "--source", str(source), "--target", "target",
                   "--name", "digits", "--output", str(work / "dataset")],
        "validate": [python, "-m", "mlp_validate", "--dataset", str(work / "dataset"),
                     "--schema", "embedded:digits", "--output", str(work / "validation")],
        "preprocess": [python, "-m", "mlp_preprocess", "--dataset", str(work / "dataset"),
                       "--output", str(work / "preprocessed")],
        "train": [python, "-m", "mlp_train", "--data", str(work / "preprocessed"),
                  "--output", str(work / "model"), "--epochs", "1", "--batch-size", "256"],
        "evaluate": [python, "-m", "mlp_evaluate", "--model", str(work / "model"),
                     "--data", str(work / "preprocessed"), "--output", str(work / "evaluation")],
        "register": [python, "-m", "mlp_register", "--registry", str(work / "registry"),
                     "--name", "digits", "--model", str(work / "model"),
                     "--evaluation", str(work / "evaluation"), "--dataset", str(work / "dataset"),
                     "--statistics", str(work / "validation" / "statistics.json"),
                     "--run-id", "bench-data", "--apply-gate"],
    }  # fmt: skip
    runs = []
    for step in STEPS:
        wall, rss = run_step(commands[step], caps[step], work / f"{step}.log")
        runs.append(StepRun(step, wall, rss))
    return runs


def run(options: Options) -> Result:
    caps = {
        step: (options.tensorflow_cap_mib if step in TENSORFLOW_STEPS else options.cap_mib) * MIB
        for step in STEPS
    }
    scale = options.end_to_end
    capped = _cgroup_root() is not None
    data_steps = ", ".join(s for s in STEPS if s not in TENSORFLOW_STEPS)
    result = Result(
        name="data",
        title="Data at scale: streaming steps under a memory cap",
        conditions=(
            "Synthetic digits data (bench/synthetic_data.py) at "
            f"{', '.join(map(str, options.sizes))} and {scale:,} times the default 1,797 rows "
            f"({synthetic_data.decoded_bytes(scale) / MIB:,.0f} MiB as a table at {scale:,}x); "
            "each step a separate process "
            + (
                f"in its own memory cgroup capped at {options.cap_mib} MiB ({data_steps}) and "
                f"{options.tensorflow_cap_mib} MiB (train and evaluate, which load TensorFlow); "
                "no swap"
                if capped
                else "UNCAPPED (no writable memory cgroup on this machine)"
            )
            + "; train runs one epoch over every training row at batch size 256; "
            f"{options.repeat} run(s) per size ({scale:,}x: one), median shown."
        ),
        settings={
            "sizes": list(options.sizes),
            "scale": scale,
            "cap_mib": options.cap_mib,
            "tensorflow_cap_mib": options.tensorflow_cap_mib,
            "repeat": options.repeat,
            "capped": capped,
            "epochs": 1,
            "batch_size": 256,
        },
        plot={
            "title": "Per step",
            "x": "size (x the default rows)",
            "metrics": ["peak_rss_mib", "wall_s"],
            "logx": True,
            "logy": True,
            "lines": [
                {"metric": "peak_rss_mib", "y": options.cap_mib, "label": "cap: data steps"},
                {"metric": "peak_rss_mib", "y": options.tensorflow_cap_mib,
                 "label": "cap: train, evaluate"},
            ],
        },
    )  # fmt: skip
    sizes = tuple(dict.fromkeys((*options.sizes, scale)))
    with tempfile.TemporaryDirectory(prefix="mlp-bench-data-") as tmp:
        for size in sizes:
            rows = size * synthetic_data.ROWS
            samples: dict[str, list[StepRun]] = {step: [] for step in STEPS}
            repeat = options.repeat if size in options.sizes else 1  # the scale run: once
            with dataset(size, keep=size in options.sizes) as source:
                for index in range(repeat):
                    work = Path(tmp) / f"{size}-{index}"
                    work.mkdir()
                    for step_run in pipeline(source, caps, work):
                        samples[step_run.step].append(step_run)
                    shutil.rmtree(work)
            group = "sizes"  # the scale run extends the same lines
            for step, step_runs in samples.items():
                result.add(group, step, size, "wall_s", "s", [r.wall_s for r in step_runs])
                result.add(group, step, size, "peak_rss_mib", "MiB",
                           [r.peak_rss_mib for r in step_runs])  # fmt: skip
                result.add(group, step, size, "rows_per_s", "rows/s",
                           [rows / r.wall_s for r in step_runs])  # fmt: skip
    _targets(result, options, scale, capped)
    return result


def _targets(result: Result, options: Options, scale: int, capped: bool) -> None:
    small, large = sorted(options.sizes)[-2:]
    for step in STEPS:
        rss = [result.find("sizes", step, x, "peak_rss_mib").median for x in (small, large)]
        wall = [result.find("sizes", step, x, "wall_s").median for x in (small, large)]
        growth = (wall[1] / wall[0]) / (large / small)
        result.targets += [
            _ratio(f"{step}: peak RSS at {large}x / at {small}x", rss[1] / rss[0], 1.5,
                   f"{rss[0]:.0f} -> {rss[1]:.0f} MiB"),
            _ratio(f"{step}: wall-time growth {small}x -> {large}x relative to linear", growth,
                   1.0, f"{wall[0]:.1f} -> {wall[1]:.1f} s for {large // small}x the rows"),
        ]  # fmt: skip
    data = synthetic_data.decoded_bytes(scale)
    for steps, cap_mib in (
        (", ".join(s for s in STEPS if s not in TENSORFLOW_STEPS), options.cap_mib),
        (", ".join(TENSORFLOW_STEPS), options.tensorflow_cap_mib),
    ):
        peaks = ", ".join(
            f"{step} {result.find('sizes', step, scale, 'peak_rss_mib').median:.0f}"
            for step in steps.split(", ")
        )
        detail = (
            f"{data / MIB:,.0f} MiB of data, {cap_mib} MiB cap, every step completed; "
            f"peak RSS MiB: {peaks}"
        )
        result.targets.append(
            _ratio(
                f"end to end at {scale:,}x: data in memory / the cap of {steps}",
                data / (cap_mib * MIB),
                FACTOR,
                detail + ("" if capped else " (uncapped: no cgroup)"),
                at_least=True,
                valid=capped,
            )
        )


def _ratio(
    name: str, value: float, limit: float, detail: str, *, at_least: bool = False,
    valid: bool = True,
) -> Target:  # fmt: skip
    met = valid and (value >= limit if at_least else value <= limit)
    return Target(name, round(value, 3), limit, "ratio", met, detail)
