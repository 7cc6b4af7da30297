"""Scheduled retraining: compile the pipeline and submit one run to a KFP API endpoint.

A generated CronJob runs ``mlp-pipeline submit --host http://ml-pipeline.kubeflow:8888 ...`` on
its schedule. Submission uses ``kfp.Client.create_run_from_pipeline_package``; ``--dry-run`` writes
the package and prints what would be submitted without contacting any server.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp_common.step import StepError

from mlp_pipeline.compile import IR_FILE, render
from mlp_pipeline.pipeline import PIPELINE_NAME, training_pipeline


@dataclass(frozen=True)
class Submission:
    """Everything one scheduled run needs."""

    host: str
    experiment: str
    run_name: str
    package_path: Path
    arguments: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None
    pipeline_root: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "experiment": self.experiment,
            "run_name": self.run_name,
            "package_path": str(self.package_path),
            "arguments": dict(sorted(self.arguments.items())),
            "namespace": self.namespace,
            "pipeline_root": self.pipeline_root,
        }


def pipeline_parameters() -> dict[str, type]:
    """Name -> Python type of every pipeline parameter (for ``--param`` checking)."""
    import inspect

    signature = inspect.signature(training_pipeline.pipeline_func)
    return {name: param.annotation for name, param in signature.parameters.items()}


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=5", "margin=0.01"]`` -> typed arguments; unknown names and bad values fail."""
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


def build_submission(
    host: str,
    package_dir: str | os.PathLike[str],
    *,
    experiment: str = PIPELINE_NAME,
    run_name: str | None = None,
    params: list[str] | None = None,
    namespace: str | None = None,
    pipeline_root: str | None = None,
    now: dt.datetime | None = None,
) -> Submission:
    """Compile the package into ``package_dir`` and describe the run to submit."""
    if not host.startswith(("http://", "https://")):
        raise StepError(f"--host {host}: must be an http:// or https:// URL of the KFP API")
    if pipeline_root is not None and not pipeline_root.startswith(("s3://", "minio://", "gs://")):
        raise StepError(
            f"--pipeline-root {pipeline_root}: expected an s3://, minio:// or gs:// URI"
        )
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    package = Path(package_dir) / IR_FILE
    package.parent.mkdir(parents=True, exist_ok=True)
    package.write_text(render()[IR_FILE], encoding="utf-8")
    return Submission(
        host=host,
        experiment=experiment,
        run_name=run_name or f"{PIPELINE_NAME}-scheduled-{stamp}",
        package_path=package,
        arguments=parse_params(params or []),
        namespace=namespace,
        pipeline_root=pipeline_root,
    )


def submit(submission: Submission, *, wait_seconds: int | None = None) -> str:
    """Submit the run; returns the run id. With ``wait_seconds`` also wait for it to finish and
    fail unless it succeeded. Connection problems become a StepError."""
    import kfp

    try:
        client = kfp.Client(host=submission.host, namespace=submission.namespace)
        result = client.create_run_from_pipeline_package(
            str(submission.package_path),
            arguments=submission.arguments,
            run_name=submission.run_name,
            experiment_name=submission.experiment,
            namespace=submission.namespace,
            pipeline_root=submission.pipeline_root,
        )
        if wait_seconds is not None:
            run = client.wait_for_run_completion(result.run_id, timeout=wait_seconds)
            state = str(getattr(run, "state", "UNKNOWN"))
            if state.upper() != "SUCCEEDED":
                raise StepError(f"run {result.run_id} finished in state {state}")
    except StepError:
        raise
    except Exception as exc:  # kfp raises urllib3/ApiException/ValueError variants
        raise StepError(f"submit to {submission.host} failed: {exc}") from exc
    return str(result.run_id)
