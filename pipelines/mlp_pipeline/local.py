"""Run the pipeline locally with ``kfp.local`` (SubprocessRunner, no containers) and summarize it.

Each run gets its own folder ``<runs>/<run-name>/`` with ``outputs/`` (the pipeline root: every
artifact), ``tmp/`` (``TMPDIR`` of the steps), ``workspace/`` and ``steps.jsonl`` (one line per step
attempt: status, seconds, message; retries show as several lines). The registry is a separate,
long-lived folder (``.run/registry`` by default) so consecutive runs build versions 1, 2, ...;
so are the dataset snapshots (``.run/datasets`` by default, next to the registry). A rerun on the
same data, params and code reuses the registered version instead of training again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp_common.registry import ModelRegistry, ModelVersion
from mlp_common.step import STEP_LOG_ENV

STEP_ORDER = (
    "ingest",
    "snapshot",
    "validate",
    "plan",
    "preprocess",
    "train",
    "evaluate",
    "register",
    "registry",
    "reuse",
)


@dataclass
class RunSummary:
    """What a local run did: step attempts, the outcome and the registered version."""

    run_dir: Path
    succeeded: bool
    attempts: list[dict[str, Any]] = field(default_factory=list)
    version: ModelVersion | None = None
    production: int | None = None
    error: str = ""

    @property
    def reused(self) -> bool:
        """True when the run trained nothing and reused a registered version."""
        return (
            self.succeeded
            and bool(self.step_attempts("reuse"))
            and not (self.step_attempts("train"))
        )

    def step_attempts(self, step: str) -> list[dict[str, Any]]:
        return [attempt for attempt in self.attempts if attempt["step"] == step]

    def render(self) -> str:
        """The human summary printed by ``make pipeline``."""
        lines = [f"run: {self.run_dir}", "steps:"]
        for step in STEP_ORDER:
            attempts = self.step_attempts(step)
            if not attempts:
                continue
            last = attempts[-1]
            seconds = sum(a["seconds"] for a in attempts)
            label = "promote" if step == "registry" else step
            retries = f" ({len(attempts) - 1} retries)" if len(attempts) > 1 else ""
            lines.append(f"  {label:<11} {last['status']:<7} {seconds:7.1f}s{retries}")
            for attempt in attempts:
                if attempt["status"] != "ok" and attempt["message"]:
                    first, *rest = attempt["message"].splitlines()
                    lines.append(f"    {attempt['status']}: {first}")
                    lines += [f"      {line.strip()}" for line in rest]
        if self.version is not None and self.reused:
            meta = self.version.metadata
            lines.append(
                f"reused: {self.version.model} version {self.version.version}, trained by run "
                f"{meta.get('pipeline_run_id')} on the same data snapshot, params and code; "
                "nothing was trained"
            )
            lines.append(f"data: {meta.get('dataset', {}).get('snapshot_uri')}")
            lines.append(f"production: version {self.production}")
        elif self.version is not None:
            meta = self.version.metadata
            metrics = meta.get("metrics", {})
            gate = meta.get("gate", {})
            lines.append("metrics:")
            for name in sorted(metrics):
                value = metrics[name]
                lines.append(
                    f"  {name:<22} {value:.4f}"
                    if isinstance(value, float)
                    else f"  {name:<22} {value}"
                )
            lines.append(
                f"gate: {gate.get('verdict', gate.get('decision', '-'))} ({gate.get('reason', '')})"
            )
            lines.append(f"data: {meta.get('dataset', {}).get('snapshot_uri')}")
            lines.append(
                f"registered: {self.version.model} version {self.version.version} "
                f"(parent: {self.version.parent}) at {self.version.path}"
            )
            lines.append(f"production: version {self.production}")
        total = sum(attempt["seconds"] for attempt in self.attempts)
        lines.append(f"step time: {total:.1f}s (inside the steps; excludes process start-up)")
        lines.append("result: " + ("succeeded" if self.succeeded else f"FAILED: {self.error}"))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The summary as data (``mlp-pipeline run --summary-json``; ``make demo`` reads it):
        steps with status and seconds, the version with its metrics and gate, production."""
        steps = []
        for step in STEP_ORDER:
            attempts = self.step_attempts(step)
            if attempts:
                steps.append(
                    {
                        "step": "promote" if step == "registry" else step,
                        "status": attempts[-1]["status"],
                        "seconds": round(sum(a["seconds"] for a in attempts), 3),
                        "attempts": len(attempts),
                        "message": attempts[-1].get("message", ""),
                    }
                )
        version = None
        if self.version is not None:
            meta = self.version.metadata
            version = {
                "model": self.version.model,
                "version": self.version.version,
                "parent": self.version.parent,
                "path": str(self.version.path),
                "metrics": meta.get("metrics", {}),
                "gate": meta.get("gate", {}),
                "snapshot_uri": meta.get("dataset", {}).get("snapshot_uri"),
                "pipeline_run_id": meta.get("pipeline_run_id"),
            }
        return {
            "run_dir": str(self.run_dir),
            "succeeded": self.succeeded,
            "reused": self.reused,
            "error": self.error,
            "steps": steps,
            "version": version,
            "production": self.production,
        }


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def new_run_dir(runs_root: str | os.PathLike[str]) -> Path:
    """A fresh, uniquely named run folder under ``runs_root``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    root = Path(runs_root)
    for suffix in range(1000):
        candidate = root / (f"run-{stamp}" + (f"-{suffix}" if suffix else ""))
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate.resolve()
    raise RuntimeError(f"{root}: cannot create a run folder")


def run_local(
    run_dir: str | os.PathLike[str],
    registry: str | os.PathLike[str],
    arguments: Mapping[str, Any] | None = None,
    *,
    extra_env: Mapping[str, str] | None = None,
    datasets: str | os.PathLike[str] | None = None,
) -> RunSummary:
    """Run the training pipeline with kfp.local in ``run_dir`` against ``registry``; dataset
    snapshots go to ``datasets`` (default: ``datasets/`` next to the registry)."""
    from kfp import local

    from mlp_pipeline.images import STEP_COMPONENT, spec_step_images, step_images
    from mlp_pipeline.pipeline import PIPELINE_NAME, build_pipeline

    try:
        images = spec_step_images(PIPELINE_NAME)
    except ModuleNotFoundError:
        # Inside the pipeline image: no generator and no platform.yaml. kfp.local runs every
        # step in this process's venv, so the images are only names here.
        components = {c: f"local/{c}" for c in sorted(set(STEP_COMPONENT.values()))}
        images = step_images(PIPELINE_NAME, components, "local", source="local run")
    training_pipeline = build_pipeline(images)

    run_path = Path(run_dir).resolve()
    registry_path = Path(registry).resolve()
    registry_path.mkdir(parents=True, exist_ok=True)
    for name in ("outputs", "tmp", "workspace"):
        (run_path / name).mkdir(parents=True, exist_ok=True)
    step_log = run_path / "steps.jsonl"
    env = {"TMPDIR": str(run_path / "tmp"), STEP_LOG_ENV: str(step_log), **(extra_env or {})}
    snapshots = Path(datasets).resolve() if datasets else registry_path.parent / "datasets"
    params = {
        "registry_uri": str(registry_path),
        "snapshot_root": str(snapshots),
        **(arguments or {}),
    }
    summary = RunSummary(run_dir=run_path, succeeded=False)
    with _environment(env):
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(run_path / "outputs"),
            workspace_root=str(run_path / "workspace"),
            raise_on_error=True,
        )
        try:
            task = training_pipeline(**params)
        except RuntimeError as exc:
            summary.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            summary.succeeded = True
            model = str(params.get("model_name", "digits"))
            summary.version = ModelRegistry(registry_path).get(model, int(task.output))
    if step_log.is_file():
        summary.attempts = [json.loads(line) for line in step_log.read_text().splitlines() if line]
    model = str(params.get("model_name", "digits"))
    summary.production = ModelRegistry(registry_path).pointer(model, "production")
    return summary
