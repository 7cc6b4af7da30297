"""Rules for distributed training components (kind TrainJob), with their spec paths.

Kubeflow Trainer names the JobSet after the TrainJob, JobSet names the Job of replicated job
`node` `<name>-node-0`, and an Indexed Job gives pod `i` the host name `<name>-node-0-<i>` in the
subdomain `<name>` (a headless Service). Host names and Service names are DNS labels of at most
63 characters, and a Service name must start with a letter (DNS-1035).
"""

from __future__ import annotations

from collections.abc import Iterator

from platformgen.spec.model import Component

Problem = tuple[str, str]

RUN_OPTIONS = ("--output", "--backup-dir")
"""Train options the TrainingRuntime's entrypoint sets itself: the run's folders on the work
volume (builders.train_job, mlp_train.jobset)."""

REPLICATED_JOB = "node"
"""The replicated job that Kubeflow Trainer runs the trainer in (its ancestor step `trainer`)."""


def worker_host_name(name: str, index: int) -> str:
    """Host name of worker `index` of the TrainJob `name` (JobSet's stable pod host names)."""
    return f"{name}-{REPLICATED_JOB}-0-{index}"


def check_distributed(name: str, c: Component) -> Iterator[Problem]:
    assert c.distributed is not None
    d, path = c.distributed, f"components.{name}"
    longest = worker_host_name(name, d.workers - 1)
    if len(longest) > 63:
        yield (
            path,
            f"worker host name {longest!r} is longer than 63 characters; "
            f"shorten the name to at most {63 - len(longest) + len(name)}",
        )
    if not name[0].isalpha():
        yield (path, "a TrainJob name must start with a letter (JobSet's Service is DNS-1035)")
    for i, arg in enumerate(c.args):
        for option in RUN_OPTIONS:
            if arg == option or arg.startswith(f"{option}="):
                yield (
                    f"{path}.args[{i}]",
                    f"{option} is set by the TrainingRuntime: the run's folder on the work "
                    "volume (distributed.storage), durable across restarts; remove it",
                )
    for i, port in enumerate(c.ports):
        if port.port == d.port:
            yield (
                f"{path}.ports[{i}].port",
                f"{port.port} is the workers' port (distributed.port); pick another",
            )
