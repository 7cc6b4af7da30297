"""Runs and recurring runs of the *deployed* pipeline, for the Jobs the platform renders.

The generator renders the compiled pipeline as K8s-native ``Pipeline``/``PipelineVersion``
objects and gives the Jobs that act on it the names it rendered (``--pipeline``,
``--pipeline-version``, ``--namespace``): nothing is compiled in the pod, and the version that
runs is the one in git.

- ``mlp-pipeline submit`` (the ``initial-training`` Job) submits one run of that version.
- ``mlp-pipeline schedule`` (a ``RecurringRun`` component's Job) makes exactly one recurring
  run of it exist (``--schedule``, ``max_concurrency`` 1, no catch-up), and disables and
  deletes the recurring runs it made for older versions; an identical one is left alone.

The KFP calls and the authentication live in :mod:`mlp_common.kfp_runs`.
"""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import dataclass, field
from typing import Any

from mlp_common import kfp_runs
from mlp_common.step import StepError

from mlp_pipeline.pipeline import PIPELINE_NAME, training_pipeline


def pipeline_parameters() -> dict[str, type]:
    """Name -> Python type of every pipeline parameter (for ``--param`` checking)."""
    signature = inspect.signature(training_pipeline)
    return {name: param.annotation for name, param in signature.parameters.items()}


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=5", "min_effect=0.01"]`` -> typed arguments; unknown names and bad values fail."""
    known = pipeline_parameters()
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise StepError(f"--param {pair}: expected NAME=VALUE")
        if name not in known:
            raise StepError(f"--param {name}: unknown pipeline parameter ({', '.join(known)})")
        kind = known[name]
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise StepError(f"--param {name}={raw}: not a valid bool (true or false)")
            out[name] = raw.lower() in ("true", "1")
            continue
        try:
            out[name] = kind(raw) if kind in (int, float) else raw
        except ValueError as exc:
            raise StepError(f"--param {name}={raw}: not a valid {kind.__name__}") from exc
    return out


@dataclass(frozen=True)
class Target:
    """The deployed pipeline version a command acts on, and where."""

    host: str
    pipeline: str
    version: str
    namespace: str | None = None
    experiment: str = PIPELINE_NAME
    arguments: dict[str, Any] = field(default_factory=dict)
    wait_for_version: float = 0

    def describe(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pipeline": self.pipeline,
            "pipeline_version": self.version,
            "namespace": self.namespace,
            "experiment": self.experiment,
            "arguments": dict(sorted(self.arguments.items())),
        }


def _deployed(target: Target) -> tuple[Any, kfp_runs.DeployedVersion]:
    """A KFP client and the deployed PipelineVersion of ``target`` (waiting for KFP to reconcile
    a just-applied version up to ``target.wait_for_version`` seconds)."""
    client = kfp_runs.connect(target.host, target.namespace)
    deployed = kfp_runs.find_version(
        client, target.pipeline, target.version, target.namespace,
        wait_seconds=target.wait_for_version,
    )  # fmt: skip
    return client, deployed


def submit(
    target: Target,
    *,
    run_name: str | None = None,
    wait_seconds: int | None = None,
    now: dt.datetime | None = None,
) -> str:
    """Submit one run of the deployed version; returns the run id. With ``wait_seconds`` also
    wait for it and fail unless it succeeded."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    client, deployed = _deployed(target)
    run_id = kfp_runs.submit_run(
        client,
        deployed,
        run_name=run_name or f"{target.version}-{stamp}",
        experiment=target.experiment,
        namespace=target.namespace,
        arguments=target.arguments,
    )
    if wait_seconds is not None:
        kfp_runs.wait_for_run(client, run_id, wait_seconds)
    return run_id


def schedule(target: Target, name: str, cron: str, *, enabled: bool = True) -> str:
    """Upsert the recurring run ``<name>/<version>``; returns what was done, in one line."""
    kfp_runs.kfp_cron(cron)  # a malformed schedule fails before any call
    client, deployed = _deployed(target)
    result = kfp_runs.upsert_recurring_run(
        client,
        deployed,
        kfp_runs.Schedule(name, cron, enabled=enabled, arguments=target.arguments),
        experiment=target.experiment,
        namespace=target.namespace,
    )
    return result.describe()
