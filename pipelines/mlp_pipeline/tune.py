"""``mlp-tune``: a small local random search over the Katib Experiment declared in platform.yaml.

The search space, the objective and the trial's command line come from the spec's Experiment
component (``components.tune-model``: ``tuning`` and ``command``/``args``), read with the
generator's own loader, so ``make tune`` and the rendered Katib Experiment cannot drift apart.
Each trial runs that command exactly as a Katib trial does (a separate ``python -m mlp_train``
process whose stdout is parsed with Katib's StdOut metrics-collector format), with only the
places changed: ``--data-from-registry`` names the local registry (``make pipeline`` fills it),
``--output`` the trial's folder, plus ``--epochs`` and ``--seed``. So a local trial, like a
Katib trial, trains on the preprocessed data the pipeline wrote for the production model
(mlp_train.data_source). Numeric parameters with ``distribution: logUniform`` are sampled
uniformly in log space, as Katib does.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp_common.files import write_json_atomic
from mlp_common.metrics import parse_katib_lines
from mlp_common.step import StepError, configure_logging, run_step

if TYPE_CHECKING:
    from platformgen.spec.model import Component, SearchParameter

ROOT = Path(__file__).resolve().parents[2]


def experiment_component(spec_path: Path, name: str | None) -> tuple[str, Component]:
    """The Experiment component ``name`` (default: the spec's only one), validated by the
    generator's loader (a bad spec is one error naming the spec path)."""
    from platformgen.errors import PlatformgenError
    from platformgen.spec.load import load_spec

    try:
        spec = load_spec(spec_path)
    except PlatformgenError as exc:
        raise StepError(str(exc)) from exc
    found = {n: c for n, c in spec.components.items() if c.tuning is not None}
    if name is not None:
        if name not in found:
            raise StepError(f"{spec_path.name}: components.{name}: not an Experiment component")
        return name, found[name]
    if len(found) != 1:
        raise StepError(
            f"{spec_path.name}: {len(found)} Experiment components ({', '.join(sorted(found))}); "
            "choose one with --component"
        )
    return next(iter(found.items()))


def sample(rng: random.Random, parameters: Sequence[SearchParameter]) -> dict[str, str]:
    """One random point, as CLI option values: a choice for categorical parameters, uniform
    between min and max, or uniform in log space for ``distribution: logUniform``."""
    point: dict[str, str] = {}
    for p in parameters:
        if p.type == "categorical":
            point[p.name] = rng.choice(p.values)
            continue
        assert p.min is not None and p.max is not None  # the spec's validation
        if p.distribution == "logUniform":
            value = math.exp(rng.uniform(math.log(p.min), math.log(p.max)))
        else:
            value = rng.uniform(p.min, p.max)
        if p.type == "int":
            point[p.name] = str(min(int(p.max), max(int(p.min), round(value))))
        else:
            point[p.name] = f"{value:.6g}"
    return point


def with_options(args: Sequence[str], options: dict[str, str | None]) -> list[str]:
    """``args`` (``--name=value`` form) with ``options`` set (None: removed), in place where
    they were, appended otherwise."""
    out, seen = [], set()
    for arg in args:
        name = arg.partition("=")[0].removeprefix("--")
        if arg.startswith("--") and name in options:
            seen.add(name)
            value = options[name]
            if value is not None:
                out.append(f"--{name}={value}")
        else:
            out.append(arg)
    out += [f"--{n}={v}" for n, v in options.items() if n not in seen and v is not None]
    return out


def trial_command(
    component: Component, places: dict[str, str | None], point: dict[str, str]
) -> list[str]:
    """The trial's command line: the component's, with ``places`` changed and the point."""
    command = list(component.command) or [sys.executable, "-m", "mlp_train"]
    if command[0] in ("python", "python3"):
        command[0] = sys.executable
    return [
        *command,
        *with_options(component.args, places),
        *(f"--{k}={v}" for k, v in point.items()),
    ]


def run_trial(command: list[str]) -> dict[str, Any]:
    """Run one trial; return its collected metrics (empty when it failed)."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    metrics = parse_katib_lines(result.stdout) if result.returncode == 0 else {}
    error = "" if result.returncode == 0 else (result.stderr.strip().splitlines() or ["?"])[-1]
    return {"metrics": metrics, "seconds": round(time.perf_counter() - started, 1), "error": error}


def tune(
    component: Component, data: dict[str, str | None], workdir: Path, trials: int, epochs: int,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Random search: ``trials`` points of the component's search space, each a trial process."""
    assert component.tuning is not None
    objective = component.tuning.objective
    rng = random.Random(seed)
    results = []
    for index in range(trials):
        point = sample(rng, component.tuning.parameters)
        places = {**data, "output": str(workdir / f"trial-{index}"), "epochs": str(epochs)}
        command = trial_command(component, {**places, "seed": str(seed)}, point)
        outcome = run_trial(command)
        results.append({"trial": index, "parameters": point, "command": command, **outcome})
        score = outcome["metrics"].get(objective.metric)
        shown = f"{score:.4f}" if score is not None else f"failed: {outcome['error']}"
        print(f"trial {index}: {json.dumps(point, sort_keys=True)} -> {shown}", file=sys.stderr)
    scored = [r for r in results if objective.metric in r["metrics"]]
    if not scored:
        raise StepError(f"all {trials} trials failed; last error: {results[-1]['error']}")
    sign = 1 if objective.type == "maximize" else -1
    best = max(scored, key=lambda r: (sign * r["metrics"][objective.metric], -r["trial"]))
    return {
        "objective": {"metric": objective.metric, "type": objective.type},
        "search_space": [p.model_dump(exclude_none=True) for p in component.tuning.parameters],
        "trials": results,
        "best": best,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-tune",
        description="Local random search over the Katib Experiment in platform.yaml, each "
        "trial a train process as Katib runs it.",
    )
    parser.add_argument("--spec", default=str(ROOT / "platform.yaml"), help="platform spec")
    parser.add_argument("--component", help="the Experiment component (default: the only one)")
    parser.add_argument(
        "--registry",
        default=str(ROOT / ".run" / "registry"),
        help="model registry whose version's data the trials read (.run/registry, which "
        "`make pipeline` fills)",
    )
    parser.add_argument("--data", help="train on this preprocess output instead of the registry's")
    parser.add_argument("--workdir", default=".run/tune", help="trial outputs (.run/tune)")
    parser.add_argument("--trials", type=int, default=4, help="number of trials (4)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial (20)")
    parser.add_argument("--seed", type=int, default=42, help="search and training seed (42)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        if args.trials < 1:
            raise StepError(f"--trials {args.trials}: must be >= 1")
        _, component = experiment_component(Path(args.spec), args.component)
        assert component.tuning is not None
        data: dict[str, str | None] = {"data-from-registry": str(Path(args.registry).resolve())}
        if args.data:
            data = {"data-from-registry": None, "model": None, "version": None, "data": args.data}
        elif not Path(args.registry).is_dir():
            raise StepError(
                f"--registry {args.registry}: no registry there; run `make pipeline` first "
                "(or pass --data)"
            )
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        report = tune(component, data, workdir, args.trials, args.epochs, args.seed)
        write_json_atomic(workdir / "tune.json", report)
        best, metric = report["best"], component.tuning.objective.metric
        print(
            f"best trial {best['trial']}: {metric}={best['metrics'][metric]:.4f} with "
            + " ".join(f"--{k}={v}" for k, v in best["parameters"].items())
        )
        return 0

    return run_step("tune", body)
