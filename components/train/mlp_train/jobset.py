"""``python -m mlp_train.jobset <train options>``: the TrainingRuntime's entrypoint.

Builds ``TF_CONFIG`` from what JobSet (under Kubeflow Trainer) gives each pod, then runs the
train step (``mlp_train.cli``) in this process:

- JobSet runs replicated job ``node`` as the Indexed Job ``<jobset>-node-<job index>``; the Job
  controller names pod ``i`` ``<jobset>-node-<job index>-<i>`` (its host name) and sets
  ``JOB_COMPLETION_INDEX=i`` in its containers; JobSet puts the pods in the subdomain
  ``<jobset>`` (a headless Service it creates), so every pod resolves every other pod by that
  stable name, across restarts.
- The runtime's pod template (platformgen builders/train_job.py) passes the pod's JobSet labels
  through the downward API: ``JOBSET_NAME`` (``jobset.sigs.k8s.io/jobset-name``),
  ``REPLICATED_JOB_NAME`` (``jobset.sigs.k8s.io/replicatedjob-name``) and ``JOB_INDEX``
  (``jobset.sigs.k8s.io/job-index``), plus ``MLP_NUM_WORKERS`` and ``MLP_WORKER_PORT`` from the
  spec's ``distributed`` section.

So worker ``i`` of N is ``<jobset>-<replicated job>-<job index>-<i>.<jobset>:<port>``, and this
pod is the worker whose index is ``JOB_COMPLETION_INDEX`` (index 0 is the chief).

Where a run writes: the runtime mounts the TrainJob's PersistentVolumeClaim at ``MLP_WORK_DIR`` and
passes the JobSet's UID as ``MLP_RUN_ID`` (its pod label ``jobset.sigs.k8s.io/jobset-uid``), so
this entrypoint adds ``--output=<MLP_WORK_DIR>/<MLP_RUN_ID>/model`` and
``--backup-dir=<MLP_WORK_DIR>/<MLP_RUN_ID>/backup``: durable, shared by the workers, the same
across the JobSet's restarts (a restart resumes from the last backed-up epoch) and new for a new
TrainJob. It also adds ``--data-pin=<MLP_WORK_DIR>/<MLP_RUN_ID>/data.json``: the first worker
to start records there the data it resolved (for ``--data-from-registry ... --version latest``,
the newest version at that moment), and every other worker and every restart of the run trains
on that data, checked against its sha256 (mlp_train.run_data), so a version registered mid-run
never mixes into it. The train options must not set any of the three.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlp_common.step import StepError

from mlp_train.run_data import PIN_FILE

REQUIRED = (
    "JOBSET_NAME",
    "REPLICATED_JOB_NAME",
    "JOB_INDEX",
    "JOB_COMPLETION_INDEX",
    "MLP_NUM_WORKERS",
    "MLP_WORKER_PORT",
)


def tf_config_from_jobset(environ: Mapping[str, str]) -> str:
    """The ``TF_CONFIG`` of this pod (see the module doc)."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise StepError(f"not in a JobSet pod: {', '.join(missing)} not set")
    numbers = {}
    for name in ("JOB_INDEX", "JOB_COMPLETION_INDEX", "MLP_NUM_WORKERS", "MLP_WORKER_PORT"):
        try:
            numbers[name] = int(environ[name])
        except ValueError as exc:
            raise StepError(f"{name}={environ[name]!r}: not an integer") from exc
    workers, index = numbers["MLP_NUM_WORKERS"], numbers["JOB_COMPLETION_INDEX"]
    if not 0 <= index < workers:
        raise StepError(f"JOB_COMPLETION_INDEX={index}: not a worker of {workers}")
    jobset, job = environ["JOBSET_NAME"], environ["REPLICATED_JOB_NAME"]
    prefix = f"{jobset}-{job}-{numbers['JOB_INDEX']}"
    port = numbers["MLP_WORKER_PORT"]
    addresses = [f"{prefix}-{i}.{jobset}:{port}" for i in range(workers)]
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )


RUN_OPTIONS = ("--output", "--backup-dir", "--data-pin")
"""Train options this entrypoint sets from the work volume and the run id."""


def run_options(environ: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """``--output``, ``--backup-dir`` and ``--data-pin`` of this run, under
    ``MLP_WORK_DIR/MLP_RUN_ID``."""
    missing = [name for name in ("MLP_WORK_DIR", "MLP_RUN_ID") if not environ.get(name)]
    if missing:
        raise StepError(f"no work volume: {', '.join(missing)} not set")
    for arg in argv:
        for option in RUN_OPTIONS:
            if arg == option or arg.startswith(f"{option}="):
                raise StepError(
                    f"{option} is set by the TrainingRuntime (the work volume at "
                    f"MLP_WORK_DIR); remove it from the train options"
                )
    run = Path(environ["MLP_WORK_DIR"]) / environ["MLP_RUN_ID"]
    return [
        f"--output={run / 'model'}",
        f"--backup-dir={run / 'backup'}",
        f"--data-pin={run / PIN_FILE}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        os.environ["TF_CONFIG"] = tf_config_from_jobset(os.environ)
        args += run_options(os.environ, args)
    except StepError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    from mlp_train.cli import main as train

    return train(args)


if __name__ == "__main__":
    raise SystemExit(main())
