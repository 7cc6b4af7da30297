"""Talk to the Kubeflow Pipelines API (v2beta1) about the *deployed* pipeline.

The generator renders the compiled pipeline as K8s-native ``Pipeline`` and ``PipelineVersion``
objects; the PipelineVersion is content-named (``<pipeline>-<hash>``), so the generator knows
its name and passes it on. Everything here works on those names, never on a package compiled
in the pod:

- :func:`connect` builds a ``kfp.Client`` that authenticates the way KFP's multi-user mode
  expects in a pod: a projected ServiceAccount token with audience ``pipelines.kubeflow.org``,
  read from ``KF_PIPELINES_SA_TOKEN_PATH`` (default ``/var/run/secrets/kubeflow/pipelines/token``)
  and sent as ``Authorization: Bearer <token>``. kfp.Client given an explicit ``host`` does not
  read that token by itself, so it is passed as ``credentials`` whenever the file exists.
- :func:`find_version` looks the deployed PipelineVersion up by pipeline and version name.
- :func:`submit_run` submits one run of it (initial training; a drift alert's retraining).
- :func:`upsert_recurring_run` makes exactly one recurring run of it exist, idempotently.

kfp is imported lazily: only the steps that talk to the API need it installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlp_common.step import StepError

if TYPE_CHECKING:
    import kfp

log = logging.getLogger(__name__)

TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
"""The variable kfp.Client reads the token's path from (kfp.client.KF_PIPELINES_SA_TOKEN_ENV)."""
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
"""Where the token is when the variable is unset (kfp.client.KF_PIPELINES_SA_TOKEN_PATH)."""
TOKEN_AUDIENCE = "pipelines.kubeflow.org"
"""The audience the KFP API server accepts for a projected ServiceAccount token."""
MANAGED_BY = "managed by mlp-pipeline schedule"
"""Part of the description of every recurring run :func:`upsert_recurring_run` creates."""
PAGE_SIZE = 100


@dataclass(frozen=True)
class DeployedVersion:
    """A PipelineVersion as the KFP API knows it."""

    pipeline: str
    version: str
    pipeline_id: str
    version_id: str


@dataclass(frozen=True)
class Schedule:
    """One recurring run of a deployed version. ``name`` marks the recurring runs this schedule
    owns: their display name is ``<name>/<version>``, so older versions' ones are found by it."""

    name: str
    cron: str
    """Five fields, as in a CronJob (minute hour day month weekday), UTC."""
    enabled: bool = True
    max_concurrency: int = 1
    no_catchup: bool = True
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def display_name(self, version: str) -> str:
        return f"{self.name}/{version}"


@dataclass(frozen=True)
class UpsertResult:
    """What :func:`upsert_recurring_run` did."""

    recurring_run_id: str
    created: bool
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        head = "created" if self.created else "unchanged"
        gone = f"; removed {', '.join(self.removed)}" if self.removed else ""
        return f"recurring run {self.recurring_run_id} {head}{gone}"


def kfp_cron(cron: str) -> str:
    """A five-field cron expression as KFP's scheduler reads it: six fields, seconds first
    (robfig/cron with seconds), so ``0 3 * * 1`` becomes ``0 0 3 * * 1``. Descriptors
    (``@daily``, ``@every 1h``) mean the same to both and pass unchanged."""
    if cron.strip().startswith("@"):
        return cron.strip()
    fields = cron.split()
    if len(fields) != 5:
        raise StepError(
            f"schedule {cron!r}: expected five cron fields (minute hour day month weekday)"
        )
    return " ".join(["0", *fields])


def token_path() -> str:
    """The projected token's path (``KF_PIPELINES_SA_TOKEN_PATH`` or the default)."""
    return os.environ.get(TOKEN_PATH_ENV) or DEFAULT_TOKEN_PATH


@contextlib.contextmanager
def _api(action: str, host: str) -> Iterator[None]:
    """Turn the SDK's exceptions into one readable StepError (kfp prints links on stdout,
    which is reserved for results: they go to stderr)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except StepError:
        raise
    except Exception as exc:  # kfp_server_api.ApiException, urllib3 and ValueError variants
        status = getattr(exc, "status", None)
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        detail = f"HTTP {status} {reason}" if status else reason
        raise StepError(f"{action} at {host} failed: {detail}") from exc


def connect(host: str, namespace: str | None = None) -> kfp.Client:
    """A kfp.Client for ``host`` that sends the projected ServiceAccount token when the pod has
    one. ``KF_PIPELINES_SA_TOKEN_PATH`` set to a missing file is an error (a broken mount),
    not a silent anonymous call."""
    if not host.startswith(("http://", "https://")):
        raise StepError(f"--host {host}: must be an http:// or https:// URL of the KFP API")
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    path = token_path()
    credentials = None
    if os.path.isfile(path):
        credentials = ServiceAccountTokenVolumeCredentials(path)
    elif os.environ.get(TOKEN_PATH_ENV):
        raise StepError(
            f"{TOKEN_PATH_ENV}={path}: no token there; mount a projected serviceAccountToken "
            f"with audience {TOKEN_AUDIENCE}"
        )
    else:
        log.info("no KFP token at %s: calling %s without credentials", path, host)
    with _api("connecting", host), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2+"
        return kfp.Client(host=host, namespace=namespace or "kubeflow", credentials=credentials)


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def _pages(list_page: Any, items: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated v2beta1 list call."""
    token = ""
    while True:
        response = list_page(page_token=token, page_size=PAGE_SIZE, **kwargs)
        yield from getattr(response, items) or []
        token = response.next_page_token or ""
        if not token:
            return


def _host(client: kfp.Client) -> str:
    return str(client._existing_config.host)


def find_version(
    client: kfp.Client,
    pipeline: str,
    version: str,
    namespace: str | None = None,
    *,
    wait_seconds: float = 0,
    poll_seconds: float = 5,
) -> DeployedVersion:
    """The deployed ``version`` of ``pipeline`` (K8s-native objects: the API's ``name`` is the
    object's metadata.name). With ``wait_seconds``, wait that long for it to appear (GitOps may
    start this before KFP has reconciled a new PipelineVersion)."""
    host = _host(client)
    deadline = time.monotonic() + wait_seconds
    while True:
        with _api(f"looking up pipeline {pipeline!r}", host):
            pipeline_ids = [
                p.pipeline_id
                for p in _pages(
                    client.list_pipelines,
                    "pipelines",
                    filter=_equals("name", pipeline),
                    namespace=namespace,
                )
                if p.name == pipeline
            ]
            version_ids = [
                v.pipeline_version_id
                for pipeline_id in pipeline_ids
                for v in _pages(
                    client.list_pipeline_versions,
                    "pipeline_versions",
                    pipeline_id=pipeline_id,
                    filter=_equals("name", version),
                )
                if v.name == version
            ]
        if len(version_ids) == 1:
            return DeployedVersion(pipeline, version, pipeline_ids[0], version_ids[0])
        if len(version_ids) > 1:
            raise StepError(f"pipeline {pipeline!r}: {len(version_ids)} versions named {version!r}")
        if time.monotonic() >= deadline:
            where = f" in namespace {namespace}" if namespace else ""
            missing = (
                f"version {version!r} of pipeline {pipeline!r}"
                if pipeline_ids
                else (f"pipeline {pipeline!r}")
            )
            raise StepError(
                f"{missing} not found{where} at {host}; is the generated PipelineVersion "
                "applied (kubectl get pipelineversions.pipelines.kubeflow.org)?"
            )
        time.sleep(poll_seconds)


def experiment_id(client: kfp.Client, name: str, namespace: str | None = None) -> str:
    """The id of experiment ``name``, created when missing (kfp.Client's get-or-create)."""
    with _api(f"getting experiment {name!r}", _host(client)):
        return str(client.create_experiment(name, namespace=namespace).experiment_id)


def submit_run(
    client: kfp.Client,
    deployed: DeployedVersion,
    *,
    run_name: str,
    experiment: str,
    namespace: str | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> str:
    """Submit one run of the deployed version; returns its run id."""
    experiment_key = experiment_id(client, experiment, namespace)
    with _api(f"submitting a run of {deployed.version}", _host(client)):
        run = client.run_pipeline(
            experiment_id=experiment_key,
            job_name=run_name,
            params=dict(arguments or {}),
            pipeline_id=deployed.pipeline_id,
            version_id=deployed.version_id,
        )
    return str(run.run_id)


def wait_for_run(client: kfp.Client, run_id: str, timeout_seconds: int) -> None:
    """Wait for a run to finish; a StepError unless it succeeded."""
    with _api(f"waiting for run {run_id}", _host(client)):
        run = client.wait_for_run_completion(run_id, timeout=timeout_seconds)
    state = str(getattr(run, "state", "UNKNOWN"))
    if state.upper() != "SUCCEEDED":
        raise StepError(f"run {run_id} finished in state {state}")


def _same(existing: Any, deployed: DeployedVersion, schedule: Schedule) -> bool:
    """Whether an existing recurring run is exactly what ``schedule`` asks for."""
    trigger = existing.trigger
    cron = trigger.cron_schedule.cron if trigger and trigger.cron_schedule else None
    reference = existing.pipeline_version_reference
    parameters = (existing.runtime_config.parameters if existing.runtime_config else None) or {}
    return (
        existing.display_name == schedule.display_name(deployed.version)
        and reference is not None
        and reference.pipeline_version_id == deployed.version_id
        and cron == kfp_cron(schedule.cron)
        and str(existing.max_concurrency) == str(schedule.max_concurrency)
        and bool(existing.no_catchup) == schedule.no_catchup
        and str(existing.mode) == ("ENABLE" if schedule.enabled else "DISABLE")
        and dict(parameters) == dict(schedule.arguments)
    )


def upsert_recurring_run(
    client: kfp.Client,
    deployed: DeployedVersion,
    schedule: Schedule,
    *,
    experiment: str,
    namespace: str | None = None,
) -> UpsertResult:
    """Make one recurring run of ``deployed`` on ``schedule`` exist in ``experiment``.

    An identical one (same version, cron, concurrency, catch-up, mode, arguments) is kept and
    nothing is created. Otherwise the new one is created first, so a failure never leaves the
    pipeline unscheduled. Then every other recurring run marked with ``schedule.name`` (older
    versions, an old cron) is disabled and deleted. Recurring runs of other names, and ones
    people created by hand, are never touched.
    """
    host = _host(client)
    experiment_key = experiment_id(client, experiment, namespace)
    prefix = f"{schedule.name}/"
    with _api(f"listing recurring runs of experiment {experiment!r}", host):
        ours = [
            r
            for r in _pages(
                client.list_recurring_runs, "recurring_runs", experiment_id=experiment_key
            )
            if (r.display_name or "").startswith(prefix) and MANAGED_BY in (r.description or "")
        ]
    keep = next((r for r in ours if _same(r, deployed, schedule)), None)
    created = keep is None
    if keep is None:
        with _api(f"creating recurring run {schedule.display_name(deployed.version)}", host):
            keep = client.create_recurring_run(
                experiment_id=experiment_key,
                job_name=schedule.display_name(deployed.version),
                description=f"{MANAGED_BY} ({schedule.name}); cron {schedule.cron} UTC",
                cron_expression=kfp_cron(schedule.cron),
                max_concurrency=schedule.max_concurrency,
                no_catchup=schedule.no_catchup,
                params=dict(schedule.arguments),
                pipeline_id=deployed.pipeline_id,
                version_id=deployed.version_id,
                enabled=schedule.enabled,
            )
    removed = []
    for old in ours:
        if old.recurring_run_id == keep.recurring_run_id:
            continue
        with _api(f"removing recurring run {old.display_name}", host):
            client.disable_recurring_run(old.recurring_run_id)
            client.delete_recurring_run(old.recurring_run_id)
        removed.append(str(old.display_name))
    return UpsertResult(str(keep.recurring_run_id), created, tuple(removed))
