"""What the apiserver, or a controller we deploy to, would reject: refused at load instead.

Each rule is the general form of a check that admission (apiserver validation, the Prometheus
Operator's CRD patterns, KServe's and Kubernetes' controllers) applies, stated over the spec so
the error names the spec path and nothing is written. Each problem is `(spec path, message)`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction

from mlp_common import contracts

from platformgen.kinds import NAME_LIMITS
from platformgen.naming import CONTENT_HASH_SUFFIX, MAX_NAME, volume_name
from platformgen.quantity import parse_quantity
from platformgen.spec.durations import PROMETHEUS_DURATION
from platformgen.spec.effective import effective_replicas, effective_resources
from platformgen.spec.model import DNS1123_LABEL, Component, ComponentOverride, PlatformSpec

Problem = tuple[str, str]

DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

ISVC_LIMITS = {
    "Knative": (47, "Knative names the revision <name>-predictor-00001 (at most 63)"),
    "Standard": (53, "KServe names the Service <name>-predictor (at most 63)"),
}

CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ("jan", "feb", "mar", "apr", "may", "jun")
                + ("jul", "aug", "sep", "oct", "nov", "dec")
            )
        },
    ),
    (
        "day of week",
        0,
        6,
        {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
    ),
)
CRON_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
GO_UNIT_NANOSECONDS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9}
GO_UNIT_NANOSECONDS |= {"m": 60 * 10**9, "h": 3600 * 10**9}
GO_MAX_DURATION = 2**63 - 1
"""time.ParseDuration's int64 nanoseconds: a longer duration is "invalid duration"."""


def _go_nanoseconds(duration: str) -> Fraction:
    return sum(
        (
            Fraction(number) * GO_UNIT_NANOSECONDS[unit]
            for number, _, unit in re.findall(r"([0-9]+(\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", duration)
        ),
        Fraction(0),
    )


def cron_problem(schedule: str) -> str | None:
    """Why the CronJob validation (robfig/cron ParseStandard) rejects `schedule`, or None."""
    text = schedule.strip()
    if re.match(r"^(CRON_)?TZ=", text):
        return "a time zone in the schedule is rejected by the apiserver: use a plain schedule"
    if text.startswith("@"):
        if text in CRON_DESCRIPTORS:
            return None
        every = text.removeprefix("@every ").strip()
        if text.startswith("@every ") and GO_DURATION.match(every):
            if _go_nanoseconds(every) > GO_MAX_DURATION:
                return f"@every {every!r}: past Go's longest duration (about 292 years)"
            return None
        return f"unknown descriptor {text!r} (use @hourly, @daily, ... or five fields)"
    fields = text.split()
    if len(fields) != 5:
        return (
            "expected exactly 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}"
        )
    for value, (what, low, high, names) in zip(fields, CRON_FIELDS, strict=True):
        problem = _cron_field(value, what, low, high, names)
        if problem:
            return problem
    return None


def _cron_field(value: str, what: str, low: int, high: int, names: dict[str, int]) -> str | None:
    def number(text: str) -> int | None:
        if text.lower() in names:
            return names[text.lower()]
        return int(text) if text.isdigit() else None

    for part in value.split(","):
        span, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return f"{what} {part!r}: the step must be a positive number"
        if span in ("*", "?"):
            if span == "?" and what not in ("day of month", "day of week"):
                return f"{what} {part!r}: '?' is only allowed for day of month or day of week"
            continue
        start_text, dash, end_text = span.partition("-")
        start = number(start_text)
        end = number(end_text) if dash else start
        if start is None or end is None:
            return f"{what} {part!r}: not a number, range or '*'"
        if not (low <= start <= high and low <= end <= high):
            return f"{what} {part!r}: out of range {low}-{high}"
        if start > end:
            return f"{what} {part!r}: the range starts after it ends"
    return None


INT32_MAX = 2**31 - 1
"""Counts, seconds and thresholds the apiserver stores as int32 (replicas, probe periods,
backoffLimit, trial counts, ...): a larger number is refused."""


def _large_numbers(value: object, path: str) -> Iterator[Problem]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _large_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _large_numbers(item, f"{path}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool) and value > INT32_MAX:
        yield (path, f"{value} is larger than the apiserver accepts ({INT32_MAX})")


def check_admission(spec: PlatformSpec) -> list[Problem]:
    """Every problem admission would find, in document order."""
    problems: list[Problem] = list(
        _large_numbers(spec.model_dump(by_alias=True, exclude_defaults=True), "")
    )
    for name, c in spec.components.items():
        problems += _component(spec, name, c)
    problems += _resources_and_budgets(spec)
    problems += _environments(spec)
    for name, pipeline in spec.pipelines.items():
        for map_name, data in pipeline.config_maps.items():
            problems += _config_keys(f"pipelines.{name}.configMaps.{map_name}", data)
        if len(name) > MAX_NAME - CONTENT_HASH_SUFFIX:
            problems.append(
                (
                    f"pipelines.{name}",
                    f"at most {MAX_NAME - CONTENT_HASH_SUFFIX} characters: its PipelineVersion "
                    "is named <name>-<10-digit content hash>",
                )
            )
    return _unique(problems)


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _component(spec: PlatformSpec, name: str, c: Component) -> Iterator[Problem]:
    path = f"components.{name}"
    if not DNS1035_LABEL.match(name):
        yield (
            path,
            f"{name!r}: a component name is also a Service name, which must be a DNS-1035 "
            "label (start with a lowercase letter)",
        )
    limit, why = NAME_LIMITS.get(c.kind, (MAX_NAME, ""))
    if c.kind == "InferenceService" and c.deployment_mode is not None:
        limit, why = ISVC_LIMITS[c.deployment_mode]
    if len(name) > limit and c.kind != "Experiment":  # Experiment: see references._check_tuning
        yield (path, f"a {c.kind} name has at most {limit} characters: {why}")
    if c.schedule is not None:
        problem = cron_problem(c.schedule)
        if problem:
            yield (f"{path}.schedule", f"{c.schedule!r}: {problem}")
    if c.metrics is not None and not _duration(c.metrics.interval):
        yield (f"{path}.metrics.interval", _duration_message(c.metrics.interval))
    if c.alerts is not None and not _duration(c.alerts.for_):
        yield (f"{path}.alerts.for", _duration_message(c.alerts.for_))
    yield from _config_keys(f"{path}.config", c.config)
    volumes = [volume_name(p) for p in c.writable_paths]
    for i, (writable, volume) in enumerate(zip(c.writable_paths, volumes, strict=True)):
        if len(volume) > MAX_NAME or not DNS1123_LABEL.match(volume):
            yield (
                f"{path}.writablePaths[{i}]",
                f"{writable!r} gives the volume name {volume!r}, not a DNS-1123 label",
            )
    for volume, count in Counter(volumes).items():
        if count > 1:
            yield (f"{path}.writablePaths", f"two paths give the same volume name {volume!r}")
    plain = {"LOG_LEVEL", *c.env}
    for env_name in c.secret_env:
        if env_name in plain:
            yield (
                f"{path}.secretEnv.{env_name}",
                "also set in env (a duplicate environment variable)",
            )
    if c.kind == "InferenceService" and c.deployment_mode is None:
        yield (
            f"{path}.deploymentMode",
            "is required for kind InferenceService: Knative or Standard",
        )
    if c.kind != "InferenceService" and c.deployment_mode is not None:
        yield (f"{path}.deploymentMode", f"does not apply to kind {c.kind}")
    yield from _served_model(path, c, set(spec.environments))


def _duration(value: str) -> bool:
    return bool(value) and bool(PROMETHEUS_DURATION.match(value))


def _duration_message(value: str) -> str:
    return f"{value!r}: must be a Prometheus duration such as 30s, 5m, 1h30m or 1d"


def _config_keys(path: str, data: dict[str, str]) -> Iterator[Problem]:
    for key in data:
        if len(key) > 253 or not CONFIG_MAP_KEY.match(key):
            yield (
                f"{path}.{key}",
                "a ConfigMap key is at most 253 characters of letters, digits, '-', '_' and '.'",
            )


def _resources_and_budgets(spec: PlatformSpec) -> Iterator[Problem]:
    """Requests above limits and disruption budgets that can never allow a disruption, in
    base and every environment; reported at the spec path that set the offending value."""
    for environment in [None, *spec.environments]:
        env = spec.environments[environment] if environment is not None else None
        for name in sorted(spec.components):
            component = spec.components[name]
            override = (env.components.get(name) if env else None) or ComponentOverride()
            merged = effective_resources(spec, component, override)
            for field in ("cpu", "memory", "ephemeral_storage"):
                request = getattr(merged.requests, field)
                limit = getattr(merged.limits, field)
                if request is None or limit is None:
                    continue
                if parse_quantity(str(request)) > parse_quantity(str(limit)):
                    where = _resources_path(spec, environment, name, field)
                    key = {"ephemeral_storage": "ephemeralStorage"}.get(field, field)
                    yield (
                        where,
                        f"the {key} request {request} exceeds the limit {limit}"
                        + (f" in environment {environment}" if environment else ""),
                    )
            budget = override.disruption_budget
            if environment is None or budget is None:
                continue
            where = f"environments.{environment}.components.{name}.disruptionBudget"
            replicas = effective_replicas(component, override)
            if budget.min_available is not None and budget.min_available >= replicas:
                yield (
                    f"{where}.minAvailable",
                    f"{budget.min_available} of {replicas} replicas: no pod may ever be "
                    "evicted, so node drains block forever (must be below the replicas)",
                )
            if budget.max_unavailable is not None and replicas == 0:
                yield (where, "a disruption budget for 0 replicas selects no pods")


MODEL_SETTINGS = contracts.MODEL_SETTINGS
"""The server's settings that `model` renders: set nowhere else, so the spec says it once."""
MODEL_FLAGS = ("--model", "--model-name", "--version", "--model-version")


def _served_model(path: str, c: Component, environments: set[str]) -> Iterator[Problem]:
    model = c.model
    if model is None:
        return
    if c.kind != "InferenceService":
        yield (f"{path}.model", f"does not apply to kind {c.kind}")
    for i, arg in enumerate(c.args):
        if arg.partition("=")[0] in MODEL_FLAGS:
            yield (
                f"{path}.args[{i}]",
                f"{arg!r}: the served model comes from {path}.model; remove the flag",
            )
    for where, settings in (("env", c.env), ("config", c.config)):
        for key in MODEL_SETTINGS:
            if key in settings:
                yield (f"{path}.{where}.{key}", f"rendered from {path}.model; remove it here")
    target = model.production_environment
    if target is not None and target not in environments:
        yield (f"{path}.model.productionEnvironment", f"unknown environment {target!r}")


def _served_model_override(
    where: str, name: str, c: Component, override: ComponentOverride
) -> Iterator[Problem]:
    """The canary rules: what the stable and the canary revisions serve must be named."""
    for key in MODEL_SETTINGS:
        if c.model is not None and key in (override.env or {}):
            yield (f"{where}.env.{key}", f"rendered from the typed {where}.model; remove it")
    if c.model is None:
        if override.model is not None:
            yield (f"{where}.model", f"components.{name} declares no model")
        if override.canary is not None and override.canary.version is not None:
            yield (f"{where}.canary.version", f"components.{name} declares no model")
    canary = override.canary
    if canary is None:
        return
    if not 1 <= canary.traffic_percent <= 99:
        yield (
            f"{where}.canary.trafficPercent",
            "must be 1-99: 0 sends the canary nothing (abort it instead), 100 is a full "
            "rollout (promote instead)",
        )
    if c.model is None:
        return
    if canary.version is None:
        yield (f"{where}.canary.version", "required: the registry version the canary serves")
    if override.model is None:
        yield (
            f"{where}.canary",
            f"needs the stable version pinned in {where}.model.version: KServe's previously "
            "rolled-out revision serves the rest of the traffic, and the spec must say what it "
            "serves",
        )
    elif canary.version == override.model.version:
        yield (
            f"{where}.canary.version",
            f"version {canary.version} is the stable version ({where}.model.version) already",
        )


def _resources_path(spec: PlatformSpec, environment: str | None, name: str, field: str) -> str:
    key = {"ephemeral_storage": "ephemeralStorage"}.get(field, field)
    if environment is not None:
        override = spec.environments[environment].components.get(name)
        if override is not None and override.resources is not None:
            return f"environments.{environment}.components.{name}.resources"
    if spec.components[name].resources is not None:
        return f"components.{name}.resources"
    return f"defaults.resources.requests.{key}"


def _environments(spec: PlatformSpec) -> Iterator[Problem]:
    for env_name, env in spec.environments.items():
        path = f"environments.{env_name}"
        for name, pin in env.images.items():
            if (pin.tag is None) == (pin.digest is None):
                yield (f"{path}.images.{name}", "set exactly one of tag or digest")
        for pipeline_name, pins in env.pipelines.items():
            where = f"{path}.pipelines.{pipeline_name}"
            if pipeline_name not in spec.pipelines:
                yield (where, f"unknown pipeline {pipeline_name!r}")
                continue
            for step, pin in pins.steps.items():
                if step not in spec.pipelines[pipeline_name].steps:
                    yield (f"{where}.steps.{step}", f"unknown step {step!r}")
                elif (pin.tag is None) == (pin.digest is None):
                    yield (f"{where}.steps.{step}", "set exactly one of tag or digest")
        for name, override in env.components.items():
            if name not in spec.components:
                continue
            where = f"{path}.components.{name}"
            c = spec.components[name]
            for env_var in override.env or {}:
                if env_var in c.secret_env:
                    yield (f"{where}.env.{env_var}", "also set from a Secret in secretEnv")
            if (
                override.canary is not None
                and c.kind == "InferenceService"
                and c.deployment_mode == "Standard"
            ):
                yield (
                    f"{where}.canary",
                    "KServe supports canary traffic only in deploymentMode Knative",
                )
            yield from _served_model_override(where, name, c, override)
        if env.require_digests:
            for name in spec.components:
                image_pin = env.images.get(name)
                if image_pin is None or image_pin.digest is None:
                    yield (
                        f"{path}.images.{name}",
                        "requireDigests: every component image must be pinned by digest here",
                    )
            for pipeline_name, pipeline in spec.pipelines.items():
                step_pins = env.pipelines.get(pipeline_name)
                for step in pipeline.steps:
                    step_pin = step_pins.steps.get(step) if step_pins is not None else None
                    if step_pin is None or step_pin.digest is None:
                        yield (
                            f"{path}.pipelines.{pipeline_name}.steps.{step}",
                            "requireDigests: every pipeline step image must be pinned by "
                            "digest here",
                        )
