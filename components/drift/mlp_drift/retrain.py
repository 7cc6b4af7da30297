"""Retraining on a drift alert: the Alertmanager webhook receiver (``POST /alerts``) and the two
ways to start a pipeline run.

Alertmanager posts webhook payload version 4 (``{"version": "4", "status", "alerts": [{"status",
"labels", ...}], ...}``). A notification with at least one *firing* alert whose ``alertname`` is
the drift alert (``FeatureDrift``, or ``<Component>FeatureDrift`` as platformgen names it)
submits one run; resolved alerts and other alert names are ignored. After a submission, further
notifications are ignored for ``cooldown`` seconds (Alertmanager repeats a firing group every
``repeat_interval``, and a retraining takes a while to change anything).

**One run per drift episode across replicas.** The monitor runs as several replicas behind one
Service, and Alertmanager's notification (or its repeat) reaches any of them. With a registry
the cooldown is not a replica's memory but one object, ``models/<model>/retrain-cooldown.json``
(:class:`RegistryCooldown`): a replica submits only after it replaced that object by
compare-and-swap (``If-Match`` its ETag on S3, or ``If-None-Match: *`` when it does not exist;
a ``flock`` on a filesystem), so of two replicas handling the same alert exactly one wins and the
other answers ``cooldown``. A submission that fails puts the previous object back.

Submitters:

- :class:`LocalSubmitter` starts a command (``mlp-pipeline run ...``, kfp.local) as a child
  process and returns at once; while it runs, no second one starts.
- :class:`KfpSubmitter` creates a run of the deployed PipelineVersion through the KFP API
  (``POST /apis/v2beta1/runs`` with ``pipeline_version_reference``), authenticated like
  ``kfp.Client`` in a cluster: the projected ServiceAccount token (audience
  ``pipelines.kubeflow.org``) read from ``KF_PIPELINES_SA_TOKEN_PATH`` on every call. The run is
  of the PipelineVersion this environment deploys (``--kfp-pipeline-version``, the content-named
  version the generator renders), looked up by name; without it, the pipeline's newest version.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlp_common.step import StepError

if TYPE_CHECKING:
    from mlp_common.registry import ModelRegistry

log = logging.getLogger(__name__)

DRIFT_ALERT = "FeatureDrift"
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
STAMP = "%Y%m%dT%H%M%SZ"


class RetrainError(Exception):
    """A run could not be submitted (the message says why)."""


class PayloadError(ValueError):
    """The webhook body is not an Alertmanager payload (answered with 400)."""


class Submitter(Protocol):
    def submit(self, reason: str) -> str:
        """Start one pipeline run; returns a description (run id, process id)."""
        ...

    def busy(self) -> bool:
        """True while a run this submitter started is known to be still going."""
        ...


def firing_drift_alerts(document: Any, alert_name: str = DRIFT_ALERT) -> list[dict[str, Any]]:
    """The firing drift alerts of an Alertmanager webhook payload (version 4)."""
    if not isinstance(document, dict):
        raise PayloadError("expected an Alertmanager webhook payload (a JSON object)")
    if document.get("version") != "4":
        raise PayloadError(
            f'unsupported webhook payload version {document.get("version")!r} (want "4")'
        )
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("payload has no 'alerts' list")
    found = []
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise PayloadError(f"alerts[{index}]: expected an object with a 'labels' object")
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f"alerts[{index}].status: {status!r}, want firing or resolved")
        name = str(alert["labels"].get("alertname", ""))
        if status == "firing" and (name == alert_name or name.endswith(alert_name)):
            found.append(alert)
    return found


@dataclass(frozen=True)
class Outcome:
    status: int
    """HTTP status for Alertmanager: 202 submitted, 200 ignored, 400 bad payload, 502 failed."""
    outcome: str
    """submitted, cooldown, ignored, rejected or failed (the metric's label)."""
    message: str


class Cooldown(Protocol):
    def claim(self, reason: str) -> tuple[str | None, Callable[[], None]]:
        """``(None, release)`` when this caller may submit (``release`` undoes the claim if the
        submission fails), else ``(why not, no-op)``."""
        ...


class MemoryCooldown:
    """The cooldown in this process's memory (one replica, or no registry)."""

    def __init__(self, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self.clock = clock
        self._last: float | None = None

    def claim(self, reason: str) -> tuple[str | None, Callable[[], None]]:
        del reason
        now = self.clock()
        if self._last is not None and now - self._last < self.cooldown:
            return _cooling(now - self._last, self.cooldown), _nothing
        previous, self._last = self._last, now

        def release() -> None:
            self._last = previous

        return None, release


class RegistryCooldown:
    """The cooldown as one object in the model registry, shared by every replica (see the
    module docstring). ``clock`` is wall-clock time: replicas on different nodes compare it."""

    def __init__(
        self,
        registry: ModelRegistry,
        model: str,
        cooldown: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = registry.store
        self.rel = f"models/{model}/retrain-cooldown.json"
        self.cooldown = cooldown
        self.clock = clock

    def claim(self, reason: str) -> tuple[str | None, Callable[[], None]]:
        previous = self.store.read_text(self.rel) if self.store.is_file(self.rel) else None
        now = self.clock()
        if previous is not None:
            try:
                last = float(json.loads(previous)["at"])
            except (ValueError, KeyError, TypeError):
                last = None  # unreadable: claim over it
            if last is not None and now - last < self.cooldown:
                return _cooling(now - last, self.cooldown), _nothing
        claimed = json.dumps(
            {"at": now, "by": socket.gethostname(), "reason": reason}, sort_keys=True
        )
        if not self.store.compare_and_swap(self.rel, previous, claimed):
            return "ignored: another replica submitted a run for this alert just now", _nothing

        def release() -> None:
            restored = previous if previous is not None else json.dumps({"at": 0})
            self.store.compare_and_swap(self.rel, claimed, restored)

        return None, release


def _cooling(since: float, cooldown: float) -> str:
    return (
        f"ignored: a run was submitted {since:.0f}s ago "
        f"(cooldown {cooldown:g}s, {cooldown - since:.0f}s left)"
    )


def _nothing() -> None:
    pass


class RetrainTrigger:
    """Turns webhook notifications into at most one run per cooldown (``state``: where the
    cooldown lives; default this process's memory)."""

    def __init__(
        self,
        submitter: Submitter,
        cooldown: float,
        alert_name: str = DRIFT_ALERT,
        clock: Callable[[], float] = time.monotonic,
        state: Cooldown | None = None,
    ) -> None:
        self.submitter = submitter
        self.cooldown = cooldown
        self.alert_name = alert_name
        self.state = state if state is not None else MemoryCooldown(cooldown, clock)
        self._lock = threading.Lock()

    def notify(self, document: Any) -> Outcome:
        try:
            alerts = firing_drift_alerts(document, self.alert_name)
        except PayloadError as exc:
            return Outcome(400, "rejected", str(exc))
        if not alerts:
            return Outcome(200, "ignored", f"ignored: no firing {self.alert_name} alert")
        features = sorted({str(a["labels"].get("feature", "?")) for a in alerts})
        reason = f"{self.alert_name} firing for features {', '.join(features)}"
        with self._lock:
            try:
                why_not, release = self.state.claim(reason)
            except (OSError, StepError) as exc:
                log.error("retraining not submitted: cooldown state unreadable: %s", exc)
                return Outcome(502, "failed", f"retraining not submitted: cooldown state: {exc}")
            if why_not is not None:
                return Outcome(200, "cooldown", why_not)
            if self.submitter.busy():
                release()
                return Outcome(200, "cooldown", "ignored: the previous run is still going")
            try:
                described = self.submitter.submit(reason)
            except RetrainError as exc:
                release()
                log.error("retraining not submitted: %s", exc)
                return Outcome(502, "failed", f"retraining not submitted: {exc}")
        log.warning("retraining submitted (%s): %s", reason, described)
        return Outcome(202, "submitted", f"submitted: {described}")


class LocalSubmitter:
    """Runs ``command`` (e.g. ``mlp-pipeline run --registry ...``) as a child process."""

    def __init__(self, command: Sequence[str], params: Mapping[str, str]) -> None:
        self.command = [*command, *(f"--param={k}={v}" for k, v in sorted(params.items()))]
        self._process: subprocess.Popen[bytes] | None = None

    def busy(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def submit(self, reason: str) -> str:
        try:
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)  # noqa: S603
        except OSError as exc:
            raise RetrainError(f"cannot start {self.command[0]}: {exc.strerror}") from exc
        threading.Thread(target=self._reap, args=(self._process,), daemon=True).start()
        return f"local run, process {self._process.pid}: {' '.join(self.command)}"

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        (log.warning if code else log.info)("local pipeline run %d exited %d", process.pid, code)

    def stop(self) -> None:
        if self.busy() and self._process is not None:
            self._process.terminate()


def _value(text: str) -> Any:
    """A pipeline argument as KFP wants it typed: JSON numbers and booleans, else the string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text


class KfpSubmitter:
    """Creates a run of the pipeline's newest version through the KFP API v2beta1."""

    def __init__(
        self,
        host: str,
        pipeline: str,
        namespace: str | None,
        params: Mapping[str, str],
        experiment_id: str | None = None,
        timeout: float = 30.0,
        version: str | None = None,
    ) -> None:
        self.host = host.rstrip("/")
        self.pipeline = pipeline
        self.version = version
        self.namespace = namespace
        self.params = dict(params)
        self.experiment_id = experiment_id
        self.timeout = timeout

    def busy(self) -> bool:
        return False  # the cooldown spaces cluster runs

    def _token(self) -> str | None:
        path = Path(os.environ.get(TOKEN_PATH_ENV) or DEFAULT_TOKEN_PATH)
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None  # KFP in single-user mode needs no token
        except OSError as exc:
            raise RetrainError(f"{path}: cannot read the service account token: {exc}") from exc

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = f"{self.host}{path}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RetrainError(f"{method} {url}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RetrainError(f"{method} {url}: {exc}") from exc

    def submit(self, reason: str) -> str:
        query = ""
        if self.namespace:
            query = "?" + urllib.parse.urlencode({"namespace": self.namespace})
        name = urllib.parse.quote(self.pipeline, safe="")
        pipeline = self._call("GET", f"/apis/v2beta1/pipelines/names/{name}{query}")
        pipeline_id = pipeline.get("pipeline_id") if isinstance(pipeline, dict) else None
        if not pipeline_id:
            raise RetrainError(f"KFP has no pipeline named {self.pipeline!r}")
        if self.version:
            equals = {"key": "name", "operation": "EQUALS", "stringValue": self.version}
            listing = urllib.parse.urlencode(
                {"page_size": 100, "filter": json.dumps({"predicates": [equals]})}
            )
        else:
            listing = urllib.parse.urlencode({"page_size": 1, "sort_by": "created_at desc"})
        versions = self._call("GET", f"/apis/v2beta1/pipelines/{pipeline_id}/versions?{listing}")
        found = versions.get("pipeline_versions") if isinstance(versions, dict) else None
        if self.version:
            found = [v for v in found or [] if v.get("name") == self.version]
            if len(found) != 1:
                raise RetrainError(
                    f"pipeline {self.pipeline!r} has {len(found)} versions named {self.version!r} "
                    "in KFP (the deployed version must exist exactly once)"
                )
        if not found:
            raise RetrainError(f"pipeline {self.pipeline!r} has no version in KFP")
        version_id = found[0].get("pipeline_version_id")
        run: dict[str, Any] = {
            "display_name": f"{self.pipeline}-drift-{time.strftime(STAMP, time.gmtime())}",
            "description": f"Retraining requested by the drift monitor: {reason}",
            "pipeline_version_reference": {
                "pipeline_id": pipeline_id,
                "pipeline_version_id": version_id,
            },
            "runtime_config": {"parameters": {k: _value(v) for k, v in self.params.items()}},
        }
        if self.experiment_id:
            run["experiment_id"] = self.experiment_id
        created = self._call("POST", "/apis/v2beta1/runs", run)
        run_id = created.get("run_id") if isinstance(created, dict) else None
        return f"KFP run {run_id} of {self.pipeline} version {version_id}"
