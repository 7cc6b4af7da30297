"""Typed, frozen models of `platform.yaml`.

Unknown keys are rejected, every default is declared once here with a one-line doc, and
keys are lowerCamelCase in YAML (aliases generated once by `Strict`). Rules that span
several fields (references between components, ports, namespaces) live in
`spec.references`, which reports each problem with its spec path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from platformgen.kinds import WORKLOAD_KINDS
from platformgen.spec.durations import prometheus_duration

if TYPE_CHECKING:
    WorkloadKind = str
else:
    WorkloadKind = Literal[WORKLOAD_KINDS]
    """A workload kind of platformgen/kinds.py's table (one Literal member per row)."""

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P|E|Ei)?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IANA_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
)
IMAGE_REPOSITORY = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$"
)
"""An image reference without tag or digest (github.com/distribution/reference grammar)."""
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
RESERVED_NAMES = frozenset({"default-deny", "allow-dns", "platform"})


def _dns_label(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"{value!r}: must be at most 63 characters (DNS-1123 label)")
    if not DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r}: must be a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return value


def _port_name(value: str) -> str:
    """IANA_SVC_NAME, what the apiserver requires of container and Service port names."""
    if len(value) > 15:
        raise ValueError(f"{value!r}: a port name has at most 15 characters (IANA service name)")
    if not IANA_SERVICE_NAME.match(value) or "--" in value:
        raise ValueError(
            f"{value!r}: must be an IANA service name (lowercase letters, digits and '-', "
            "no '--', starting and ending with a letter or digit)"
        )
    if not any(ch.isalpha() for ch in value):
        raise ValueError(f"{value!r}: a port name must contain at least one letter")
    return value


def _label_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        raise ValueError(f"{value!r}: a label key's prefix must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        raise ValueError(
            f"{value!r}: a label key's name must be 1-63 characters of letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit"
        )
    return value


def _label_value(value: str) -> str:
    if len(value) > 63 or not LABEL_NAME.match(value):
        raise ValueError(
            f"{value!r}: a label value must be at most 63 characters of letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit"
        )
    return value


def _image_repository(value: str) -> str:
    if not IMAGE_REPOSITORY.match(value):
        raise ValueError(
            f"{value!r}: must be an image repository without tag or digest "
            "(e.g. registry.example.com/team/app; lowercase path)"
        )
    return value


def _image_tag(value: str) -> str:
    if not IMAGE_TAG.match(value):
        raise ValueError(f"{value!r}: must be an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be 1-65535")
    return value


def _quantity(value: str | int | float) -> str:
    text = str(value)
    if not QUANTITY.match(text):
        raise ValueError(f"{text!r}: must be a Kubernetes quantity such as 100m, 1, 256Mi or 2Gi")
    return text


def _env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(f"{value!r}: must be a C identifier (letters, digits, '_')")
    return value


def _http_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r}: must start with '/'")
    return value


LEGACY_DEPLOYMENT_MODES = {"Serverless": "Knative", "RawDeployment": "Standard"}
"""KServe's names before v0.15 and what they are now. Its defaulter rewrites a legacy name in
the stored object (drift against Git) and its validator then rejects updates (kserve#4798)."""


def _deployment_mode(value: object) -> object:
    if isinstance(value, str) and value in LEGACY_DEPLOYMENT_MODES:
        raise ValueError(
            f"{value!r} is KServe's legacy name, which its defaulter rewrites in the cluster "
            f"(drift from Git); use {LEGACY_DEPLOYMENT_MODES[value]!r}"
        )
    return value


def _percent(value: int) -> int:
    if not 0 <= value <= 100:
        raise ValueError("must be 0-100")
    return value


Name = Annotated[str, AfterValidator(_dns_label)]
"""A DNS-1123 label of at most 63 characters: component, namespace and port names."""
Port = Annotated[int, AfterValidator(_port)]
DeploymentMode = Annotated[Literal["Knative", "Standard"], BeforeValidator(_deployment_mode)]
"""KServe's deployment modes by their v0.15+ names; the legacy names are refused."""
PortName = Annotated[str, AfterValidator(_port_name)]
"""A port name: an IANA service name (at most 15 characters, at least one letter)."""
ImageRepository = Annotated[str, AfterValidator(_image_repository)]
ImageTag = Annotated[str, AfterValidator(_image_tag)]
Quantity = Annotated[str | int | float, AfterValidator(_quantity)]
EnvName = Annotated[str, AfterValidator(_env_name)]
HttpPath = Annotated[str, AfterValidator(_http_path)]
Percent = Annotated[int, AfterValidator(_percent)]
PositiveInt = Annotated[int, Field(ge=1)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Labels = dict[LabelKey, LabelValue]
"""Kubernetes labels: qualified-name keys, values of at most 63 characters."""
PolicyTool = Literal["checkov", "kube-linter", "kube-score"]
PolicyExceptions = dict[PolicyTool, dict[str, Annotated[str, Field(min_length=10)]]]
"""Per policy tool, check id -> the written reason it does not apply (rendered as annotations)."""


class Strict(BaseModel):
    """Base for every spec model: frozen, unknown keys rejected, lowerCamelCase keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        allow_inf_nan=False,
    )


class ResourceList(Strict):
    cpu: Quantity | None = Field(None, description="CPU, e.g. 100m or 2.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 256Mi.")
    ephemeral_storage: Quantity | None = Field(
        None, description="Node-local scratch space, e.g. 1Gi."
    )


class Resources(Strict):
    requests: ResourceList = Field(ResourceList(), description="What the scheduler reserves.")
    limits: ResourceList = Field(
        ResourceList(),
        description="The hard cap; memory limits are required by the secure defaults.",
    )


class ServicePort(Strict):
    name: PortName = Field(description="Port name, referenced by probes, metrics and dependencies.")
    port: Port = Field(description="Container port, also the Service port (written once).")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field("TCP", description="Transport protocol.")


class Probe(Strict):
    path: HttpPath | None = Field(
        None, description="HTTP GET path; without it the probe is a TCP check."
    )
    port: Name = Field(description="Name of one of the component's ports.")
    initial_delay_seconds: int = Field(
        default=0, ge=0, description="Seconds before the first probe."
    )
    period_seconds: PositiveInt = Field(10, description="Seconds between probes.")
    failure_threshold: PositiveInt = Field(
        3, description="Failures before the probe is considered failed."
    )
    timeout_seconds: PositiveInt = Field(1, description="Seconds before a probe attempt times out.")


class Probes(Strict):
    liveness: Probe | None = Field(None, description="Restart the container when this fails.")
    readiness: Probe | None = Field(
        None, description="Take the pod out of Service endpoints when this fails."
    )
    startup: Probe | None = Field(
        None, description="Hold liveness/readiness until the app has started (slow model loads)."
    )


Duration = Annotated[str, AfterValidator(prometheus_duration)]
"""A non-zero Prometheus duration of at most a year: 30s, 5m, 1h30m (spec.durations)."""


class Metrics(Strict):
    port: Name = Field(
        description=(
            "Name of the port that serves metrics (metrics share a component port by default)."
        )
    )
    path: HttpPath = Field("/metrics", description="HTTP path of the Prometheus endpoint.")
    interval: Duration = Field("30s", description="Scrape interval.")


class AlertThresholds(Strict):
    """Thresholds for the alerts a component gets. Unset means that alert is not rendered."""

    error_ratio: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Serving: alert when the 5xx share of requests exceeds this over 5 minutes.",
    )
    latency_p99_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Serving: alert when p99 request latency exceeds this many seconds.",
    )
    model_age_hours: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Serving: alert when the loaded model is older than this (retraining stalled)."
        ),
    )
    drift_psi: float | None = Field(
        default=None,
        gt=0,
        description="Drift: alert when any feature's population stability index exceeds this.",
    )
    drift_window: Duration = Field(
        "1h",
        description=(
            "Drift: served values counted by every replica over this range "
            "(`increase(...[w])`) are compared with the reference (the recording rules' "
            "window)."
        ),
    )
    drift_min_samples: PositiveInt = Field(
        200,
        description=(
            "Drift: fewest rows (all replicas) in `driftWindow` before FeatureDrift may "
            "fire; PSI is biased upwards by about (bins - 1) / rows on small samples, and"
            " an idle service stays quiet."
        ),
    )
    for_: Duration = Field(
        default="10m",
        alias="for",
        description="How long a condition must hold before an alert fires.",
    )
    window: Duration = Field(
        "5m",
        description=(
            "Range the error ratio and p99 latency are computed over "
            "(`rate(...[window])`): at least four scrape intervals, so a missed scrape "
            "does not empty it."
        ),
    )


class AlertWebhook(Strict):
    """Alertmanager sends some of this component's own alerts to it: an AlertmanagerConfig in
    the component's namespace routes them to `http://<service>.<namespace>.svc:<port><path>`."""

    alerts: tuple[Literal["FeatureDrift"], ...] = Field(
        min_length=1,
        description=(
            "Alerts (by suffix; the rule names them <Component><Suffix>) routed to the receiver."
        ),
    )
    port: Name = Field(description="Name of the component port that receives the webhook.")
    path: HttpPath = Field("/alerts", description="HTTP path of the receiver.")
    alertmanager: Name = Field(
        description=(
            "The endpoint (in `endpoints`) of the Alertmanager pods; listed in "
            "`exposedTo`, so the NetworkPolicy lets them connect."
        )
    )


class RbacRule(Strict):
    namespace: Name = Field(
        description="Namespace the Role is created in (may be another platform namespace)."
    )
    api_groups: tuple[str, ...] = Field(
        min_length=1, description='API groups, "" for the core group.'
    )
    resources: tuple[str, ...] = Field(
        min_length=1, description="Resources, e.g. inferenceservices."
    )
    verbs: tuple[str, ...] = Field(min_length=1, description="Verbs, e.g. get, patch.")
    resource_names: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        (),
        description=(
            "Only these objects (e.g. the one Secret a component reads); empty: every object."
        ),
    )
    exception: Annotated[str, Field(min_length=10)] | None = Field(
        None,
        description=(
            "Why this rule needs a grant the platform otherwise refuses as privilege "
            "escalation (a wildcard, escalate/bind/impersonate, exec, tokens, workload or"
            " RBAC writes, Secrets beyond `get` of named ones; spec.security). Rendered "
            "as an annotation on the Role."
        ),
    )


class Autoscaling(Strict):
    min_replicas: PositiveInt = Field(
        description="Lower bound; also the Deployment's replicas in that environment."
    )
    max_replicas: PositiveInt = Field(description="Upper bound.")
    target_cpu_utilization: int = Field(
        default=70,
        ge=1,
        description="Average CPU utilisation (percent of requests) the HPA aims for.",
    )


class DisruptionBudget(Strict):
    min_available: PositiveInt | None = Field(
        None, description="Pods that must stay up during voluntary disruptions."
    )
    max_unavailable: PositiveInt | None = Field(
        None, description="Pods that may be down during voluntary disruptions."
    )


class TopologySpread(Strict):
    topology_key: LabelKey = Field(
        "topology.kubernetes.io/zone", description="Node label to spread over."
    )
    max_skew: PositiveInt = Field(
        1, description="Largest allowed difference in pods between topology domains."
    )
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(
        "ScheduleAnyway", description="What the scheduler does when it cannot spread."
    )


ModelVersion = Annotated[int, Field(ge=1)] | Literal["production"]
"""A registry version number, or `production`: follow the registry's production pointer."""


class ServedModel(Strict):
    """What an InferenceService serves: one model of the registry, at a version."""

    name: Name = Field(description="Model name in the registry (the server's MLP_MODEL).")
    version: ModelVersion = Field(
        "production",
        description=(
            "Version the predictor serves (MLP_MODEL_VERSION): a number pins it and the "
            "server never switches; `production` follows the registry's pointer (hot "
            "reload). Environments pin it with "
            "`environments.<env>.components.<name>.model.version`."
        ),
    )
    production_environment: Name | None = Field(
        None,
        description=(
            "The environment whose full `platformgen promote-model` also moves the "
            "registry's production pointer (compare-and-swap), so servers following "
            "`production` serve what it serves; absent: promotions never move the "
            "pointer."
        ),
    )


class ModelPin(Strict):
    """The registry version an environment serves (its stable revision)."""

    version: PositiveInt = Field(
        description="Registry version number; replaces `components.<name>.model.version` here."
    )


class Canary(Strict):
    """A KServe canary rollout: the revision rendered from the current spec serves `version`
    to `trafficPercent` of the requests; KServe's previously rolled-out revision (the stable
    `model.version`) keeps the rest."""

    traffic_percent: Percent = Field(
        description=(
            "Share of traffic the newest revision receives (KServe canaryTrafficPercent), 1-99."
        )
    )
    version: PositiveInt | None = Field(
        None,
        description=(
            "Registry version the canary serves (required when the component declares `model`)."
        ),
    )


class SearchParameter(Strict):
    """One hyperparameter: the train CLI option `--<name>` and the Katib parameter name."""

    name: Name = Field(description="Option name without dashes prefix, e.g. learning-rate.")
    type: Literal["double", "int", "categorical"] = Field(description="Katib parameterType.")
    min: float | None = Field(None, description="Lower bound (double, int).")
    max: float | None = Field(None, description="Upper bound (double, int).")
    values: tuple[str, ...] = Field((), description="Choices (categorical).")
    distribution: Literal["uniform", "logUniform"] | None = Field(
        None,
        description=(
            "How a numeric parameter is sampled between min and max: uniform (Katib's "
            "default), or logUniform (uniform in log space: each decade equally likely; "
            "min must be above 0). Katib feasibleSpace.distribution; `make tune` samples "
            "the same way."
        ),
    )


class Objective(Strict):
    type: Literal["maximize", "minimize"] = Field(
        "maximize", description="Whether the metric should go up or down."
    )
    metric: str = Field(
        min_length=1,
        description=(
            "Metric the trial prints on stdout as `<metric>=<value>` (Katib StdOut collector)."
        ),
    )
    goal: float | None = Field(None, description="Stop early once a trial reaches this value.")
    additional_metrics: tuple[str, ...] = Field(
        (), description="Other metrics to record per trial."
    )


class Tuning(Strict):
    """A Katib Experiment over the component's container (kind Experiment)."""

    objective: Objective
    algorithm: Literal["random", "grid", "bayesianoptimization", "tpe"] = Field(
        "random", description="Katib search algorithm."
    )
    max_trials: PositiveInt = Field(12, description="Trials in total.")
    parallel_trials: PositiveInt = Field(2, description="Trials at once.")
    max_failed_trials: int = Field(
        default=3, ge=0, description="Failed trials before the experiment fails."
    )
    parameters: tuple[SearchParameter, ...] = Field(
        min_length=1, description="The search space, passed to the container as `--<name>=<value>`."
    )
    db_manager: Name = Field(
        "katib-db-manager",
        description=(
            "The endpoint of Katib's db-manager, which the metrics collector Katib "
            "injects into every trial pod reports to; it must be in `dependsOn` (the "
            "trial pods' egress)."
        ),
    )


class PayloadLogger(Strict):
    """KServe's payload logger: copy requests (and/or responses) to another component."""

    sink: Name = Field(
        description=(
            "A component in `dependsOn` that receives the events (e.g. the drift monitor)."
        )
    )
    path: HttpPath = Field("/log", description="HTTP path on the sink's first port.")
    mode: Literal["all", "request", "response"] = Field("request", description="What is logged.")


class SecretKeyRef(Strict):
    """A key of an existing Secret in the component's namespace (never its value)."""

    secret: Name = Field(
        description=(
            "Name of the Secret (created outside the spec: sealed, external-secrets, the "
            "installer)."
        )
    )
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        description="Key inside the Secret."
    )


class Distributed(Strict):
    """Multi-worker training (kind TrainJob): TensorFlow MultiWorkerMirroredStrategy workers
    that Kubeflow Trainer schedules from a TrainJob and its TrainingRuntime, on JobSet."""

    workers: int = Field(
        ge=2,
        le=128,
        description="Worker pods (the runtime's mlPolicy.numNodes); worker 0 is the chief.",
    )
    port: Port = Field(
        2222,
        description=(
            "Worker-to-worker gRPC port: the TF_CONFIG addresses, and the only port the "
            "workers' NetworkPolicy opens between them."
        ),
    )
    storage: Quantity = Field(
        "1Gi",
        description=(
            "Size of the PersistentVolumeClaim `<name>-work` (ReadWriteMany) every worker"
            " mounts: the chief's model and the BackupAndRestore checkpoints live there, "
            "per run, so they outlive the pods and a restarted JobSet resumes from the "
            "last epoch."
        ),
    )
    storage_class_name: Name | None = Field(
        None,
        description=(
            "StorageClass of that claim (ReadWriteMany-capable); the cluster's default when unset."
        ),
    )


class SparkExecutors(Strict):
    """The executors of a SparkApplication: each pod's resources and the dynamic allocation
    bounds (Spark adds executors while tasks wait and removes idle ones, within the bounds)."""

    resources: Resources = Field(
        description=(
            "Each executor pod's cpu and memory requests and limits (both requests required; "
            "40% of the memory request is off-heap overhead for the Python workers); its "
            "ephemeral storage is `localDirSize`."
        )
    )
    min_executors: int = Field(
        1, ge=0, le=1000, description="Fewest executors (dynamicAllocation.minExecutors)."
    )
    max_executors: int = Field(
        ge=1, le=1000, description="Most executors (dynamicAllocation.maxExecutors)."
    )
    local_dir_size: Quantity = Field(
        "4Gi",
        description=(
            "Size limit of each executor's Spark local dir (shuffle and spill files), an "
            "emptyDir: the executors' ephemeral storage."
        ),
    )


class Spark(Strict):
    """A PySpark application (kind SparkApplication) that the Spark Operator submits in cluster
    mode: a driver pod with the component's resources, executors it adds and removes within
    `executors`' bounds, all running the component's image."""

    main_application_file: Annotated[
        str, Field(max_length=253, pattern=r"^local:///[A-Za-z0-9_./-]+\.py$")
    ] = Field(
        description=(
            "The Python file in the image the driver runs (local:///...py); the "
            "component's `args` are its arguments."
        )
    )
    spark_version: Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")] = Field(
        description="The Spark version in the image (the pinned pyspark)."
    )
    executors: SparkExecutors = Field(description="Executor resources and dynamic allocation.")
    storage: Quantity = Field(
        "10Gi",
        description=(
            "Size of the PersistentVolumeClaim `<name>-work` (ReadWriteMany) that the driver and "
            "every executor mount at the same path, also their TMPDIR: the input the driver "
            "copies from an object store, the part files executors write and the files the "
            "driver assembles from them all live where every pod of the application sees them."
        ),
    )
    storage_class_name: Name | None = Field(
        None,
        description=(
            "StorageClass of that claim (ReadWriteMany-capable); the cluster's default when unset."
        ),
    )
    driver_port: Port = Field(
        7078, description="The driver's RPC port (spark.driver.port), executors connect to it."
    )
    block_manager_port: Port = Field(
        7079,
        description=(
            "The block manager port of the driver and every executor (shuffle and broadcast "
            "blocks); with `driverPort`, the only ports their NetworkPolicy opens between them."
        ),
    )


class ComponentOverride(Strict):
    """What an environment may change about a component. Everything else is fixed."""

    replicas: int | None = Field(
        default=None, ge=0, description="Replica count in this environment."
    )
    resources: Resources | None = Field(
        None, description="Replaces requests/limits entries that are set here."
    )
    env: dict[EnvName, str] | None = Field(
        None, description="Extra or changed environment variables."
    )
    autoscaling: Autoscaling | None = Field(
        None, description="Adds a HorizontalPodAutoscaler (Deployments only)."
    )
    disruption_budget: DisruptionBudget | None = Field(
        None, description="Adds a PodDisruptionBudget (Deployments and InferenceServices)."
    )
    topology_spread: TopologySpread | None = Field(
        None, description="Adds topologySpreadConstraints to the pod template (Deployments only)."
    )
    model: ModelPin | None = Field(
        None,
        description=(
            "The registry version this environment serves (InferenceServices with `model` only)."
        ),
    )
    canary: Canary | None = Field(
        None,
        description=(
            "Sends part of the traffic to the newest revision, which serves "
            "`canary.version` (InferenceServices only; `platformgen promote-model "
            "--canary` writes it)."
        ),
    )
    suspend: bool | None = Field(
        None,
        description=(
            "Suspends a CronJob, or disables a RecurringRun's recurring run, in this environment."
        ),
    )
    policy_exceptions: PolicyExceptions = Field(
        {},
        description=(
            "Policy checks waived for this component in this environment, each with its reason."
        ),
    )


class Component(Strict):
    """One deployable unit. Its name (the key in `components`) names every object it owns."""

    kind: WorkloadKind = Field(
        description=(
            "Deployment for services, Job/CronJob for batch, KServe InferenceService for "
            "models, Katib Experiment for hyperparameter tuning, Kubeflow Trainer "
            "TrainJob for distributed training (with `distributed`), Spark Operator "
            "SparkApplication for a PySpark job (with `spark`), RecurringRun for a "
            "Kubeflow Pipelines recurring run of the deployed `pipeline` on `schedule` (a"
            " Job that applies it)."
        )
    )
    namespace: Name = Field(description="One of `namespaces`.")
    role: Name = Field(
        description="app.kubernetes.io/component label, e.g. serving, monitoring, training."
    )
    image: ImageRepository = Field(
        description="Image repository without tag; the tag or digest comes from the environment."
    )
    description: str = Field("", description="One line for humans (documentation only).")
    command: tuple[str, ...] = Field((), description="Container entrypoint override.")
    args: tuple[str, ...] = Field((), description="Container arguments.")
    ports: tuple[ServicePort, ...] = Field(
        (),
        description=(
            "Ports the component serves; they define its Service and NetworkPolicy ingress."
        ),
    )
    probes: Probes = Field(Probes(), description="Health probes (long-running kinds).")
    metrics: Metrics | None = Field(
        None, description="Prometheus scraping; renders a ServiceMonitor."
    )
    alerts: AlertThresholds | None = Field(
        None, description="Alert thresholds; renders a PrometheusRule."
    )
    resources: Resources | None = Field(None, description="Merged over `defaults.resources`.")
    env: dict[EnvName, str] = Field(
        {}, description="Environment variables (non-secret; credential-looking values are refused)."
    )
    secret_env: dict[EnvName, SecretKeyRef] = Field(
        {},
        description=(
            "Environment variables read from existing Secrets by name and key (credentials)."
        ),
    )
    deployment_mode: DeploymentMode | None = Field(
        None,
        description=(
            "KServe deployment mode (kind InferenceService, where it is required): "
            "Knative (queue-proxy on 8012, scale to zero, canary) or Standard (a "
            "Deployment and a `<name>-predictor` Service; no canary)."
        ),
    )
    config: dict[str, str] = Field(
        {}, description="Files/values rendered into a ConfigMap and loaded with envFrom."
    )
    replicas: int = Field(
        default=1, ge=0, description="Replicas in base (Deployments and InferenceServices)."
    )
    schedule: str | None = Field(
        None, description="Cron schedule, five fields, UTC (CronJobs and RecurringRuns only)."
    )
    pipeline: Name | None = Field(
        None,
        description=(
            "A pipeline in `pipelines` whose deployed PipelineVersion this Job (submit "
            "one run) or RecurringRun (schedule it) talks to the KFP API about: passes "
            "its names to the container (`--pipeline`, `--pipeline-version`, "
            "`--namespace`), mounts a projected ServiceAccount token for the KFP API "
            "(audience pipelines.kubeflow.org) instead of the Kubernetes API token, and "
            "grants the KFP permissions the container needs (a Role in the pipeline's "
            "namespace). On a Deployment (a monitor that starts runs), the container gets"
            " the same facts as MLP_PIPELINE, MLP_PIPELINE_NAMESPACE and, per "
            "environment, MLP_PIPELINE_VERSION (mlp_common.contracts), and the projected "
            "KFP token; its KFP permissions are its `rbac`."
        ),
    )
    backoff_limit: int = Field(
        default=2,
        ge=0,
        description="Pod retries before a Job is marked failed (Jobs and CronJobs).",
    )
    active_deadline_seconds: PositiveInt | None = Field(
        None, description="Wall-clock limit of a Job run."
    )
    depends_on: tuple[Name, ...] = Field(
        (),
        description=(
            "Components or endpoints this one connects to; renders egress (and their ingress)."
        ),
    )
    exposed_to: tuple[Name, ...] = Field(
        (), description="Endpoints (outside the platform) allowed to connect to this component."
    )
    rbac: tuple[RbacRule, ...] = Field(
        (), description="Kubernetes API access; renders Role/RoleBinding and mounts the token."
    )
    tuning: Tuning | None = Field(
        None, description="Search space and objective (kind Experiment only)."
    )
    distributed: Distributed | None = Field(
        None,
        description=(
            "Worker count and port of a distributed training component (kind TrainJob only)."
        ),
    )
    spark: Spark | None = Field(
        None,
        description=(
            "Application file, executors and ports of a Spark component (kind "
            "SparkApplication only); the driver gets the component's resources."
        ),
    )
    payload_logger: PayloadLogger | None = Field(
        None,
        description="Send inference payloads to another component (kind InferenceService only).",
    )
    model: ServedModel | None = Field(
        None,
        description=(
            "The registry model and version the server loads (kind InferenceService "
            "only), rendered as the container's MLP_MODEL and MLP_MODEL_VERSION."
        ),
    )
    alert_webhook: AlertWebhook | None = Field(
        None,
        description=(
            "Receive some of its own alerts from Alertmanager (renders an AlertmanagerConfig)."
        ),
    )
    policy_exceptions: PolicyExceptions = Field(
        {},
        description=(
            "Policy checks (checkov, kube-linter, kube-score) waived for the workload, "
            "with reasons."
        ),
    )
    writable_paths: tuple[HttpPath, ...] = Field(
        ("/tmp",), description="Paths backed by emptyDir (the root filesystem is read-only)."
    )


class Endpoint(Strict):
    """Something outside the platform: in-cluster by namespace+labels, or external by CIDR."""

    namespace: Name | None = Field(
        None, description="Namespace of an in-cluster endpoint (with podLabels)."
    )
    pod_labels: Labels = Field(
        {},
        description=(
            "Pod labels of an in-cluster endpoint; empty selects every pod in the namespace."
        ),
    )
    cidr: str | None = Field(
        None, description="IP block of an external endpoint, e.g. 203.0.113.0/24."
    )
    except_: tuple[str, ...] = Field(
        default=(), alias="except", description="Sub-blocks excluded from `cidr`."
    )
    ports: tuple[ServicePort, ...] = Field(
        (), description="Ports the platform may connect to; empty for a client-only endpoint."
    )
    description: str = Field("", description="One line for humans.")
    kubernetes_api: bool = Field(
        False,
        description=(
            "This endpoint is the Kubernetes API server (by `cidr`: its endpoint "
            "addresses, as NetworkPolicies see them after the `kubernetes` Service's "
            "DNAT). Pods whose role needs the API get egress to it, and only those: the "
            "pods of every KFP run (the launcher patches its pod, reads `kfp-launcher`, "
            "records Argo task results), in pipeline namespaces and tenants."
        ),
    )


class Monitoring(Strict):
    prometheus_namespace: Name = Field(
        "monitoring",
        description="Namespace Prometheus runs in (NetworkPolicies allow scrapes from it).",
    )
    prometheus_pod_labels: Labels = Field(
        {"app.kubernetes.io/name": "prometheus"}, description="Labels of the Prometheus pods."
    )
    selector_labels: Labels = Field(
        {"release": "kube-prometheus-stack"},
        description=(
            "Labels Prometheus selects ServiceMonitors and PrometheusRules by (ruleSelector)."
        ),
    )
    runbook_base_url: str = Field(
        "https://runbooks.example.com/ml-platform",
        description="Alerts link to <runbookBaseUrl>/<alert-name>.",
    )
    evaluation_interval: Duration | None = Field(
        None,
        description=(
            "How often each component's rule group is evaluated; unset = the Prometheus "
            "object's `evaluationInterval` (30s by default)."
        ),
    )


class Defaults(Strict):
    """Container defaults every component starts from."""

    run_as_user: int = Field(
        default=10001,
        ge=1000,
        le=2147483647,
        description="Non-root UID (and GID) for every container; the rendered Dockerfiles' USER.",
    )
    image_tag: ImageTag = Field(
        "latest", description="Tag in base; environments pin tags or digests."
    )
    resources: Resources = Field(
        Resources(
            requests=ResourceList(cpu="100m", memory="128Mi", ephemeral_storage="64Mi"),
            limits=ResourceList(cpu="1", memory="256Mi", ephemeral_storage="2Gi"),
        ),
        description="Requests and limits for components that do not set their own.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="LOG_LEVEL passed to every component."
    )
    termination_grace_period_seconds: int = Field(
        default=30, ge=0, description="Time a pod gets to drain on shutdown."
    )


class ImagePin(Strict):
    tag: ImageTag | None = Field(None, description="Image tag in this environment.")
    digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Image digest in this environment (preferred in prod).",
    )


class EnvironmentPipeline(Strict):
    steps: dict[Name, ImagePin] = Field(
        {}, description="Per-step tag or digest, overriding the environment's imageTag."
    )


class Environment(Strict):
    """An environment is a cluster: same names and namespaces, different sizes and pins."""

    image_tag: ImageTag | None = Field(
        None, description="Tag for every component image in this environment."
    )
    images: dict[Name, ImagePin] = Field(
        {}, description="Per-component tag or digest, overriding imageTag."
    )
    log_level: Literal["debug", "info", "warning", "error"] | None = Field(
        None, description="LOG_LEVEL in this environment."
    )
    components: dict[Name, ComponentOverride] = Field({}, description="Per-component differences.")
    policy_exceptions: PolicyExceptions = Field(
        {},
        description=(
            "Policy checks waived for every workload in this environment, each with its reason."
        ),
    )
    require_digests: bool = Field(
        False,
        description=(
            "Every image (components and pipeline steps) must be pinned by digest here (prod)."
        ),
    )
    pipelines: dict[Name, EnvironmentPipeline] = Field(
        {}, description="Per-pipeline step image pins in this environment."
    )
    min_model_metrics: dict[str, Annotated[float, Field(ge=0)]] = Field(
        {},
        description=(
            "Floors a model version's registry metrics must meet before `platformgen "
            "promote-model` pins it here, e.g. {test_accuracy: 0.95}; its gate must have "
            "passed regardless."
        ),
    )


class PipelineStep(Strict):
    image: ImageRepository = Field(
        description="Image repository of the step, without tag (the tag is defaults.imageTag)."
    )


class Promotion(Strict):
    """How a training pipeline splits its data and gates promotion. Each field is the default of
    the pipeline parameter of the same name (snake_case) in the PipelineVersion every environment
    deploys, so recurring, drift and initial runs all decide the same way."""

    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="One-sided false-promotion rate of the gate's paired test (exact McNemar).",
    )
    min_effect: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description=(
            "Smallest improvement of the gate metric worth detecting (0.02 = two points "
            "of accuracy); the gate refuses when the test set cannot detect it with power"
            " 0.8."
        ),
    )
    schema_change: bool = Field(
        False,
        description=(
            "The next model may change features, their order, dtypes or classes "
            "(otherwise refused). Declare it for the rollout that changes the schema, "
            "then remove it."
        ),
    )
    id_column: str = Field(
        "",
        description=(
            "Column whose value keys each row's train/val/test split (default: the row's content)."
        ),
    )


class Pipeline(Strict):
    """A Kubeflow Pipelines v2 pipeline, compiled to K8s-native v2beta1 objects."""

    namespace: Name = Field(
        description="One of `namespaces`; the Pipeline and PipelineVersion objects go there."
    )
    compiled: str = Field(
        min_length=1,
        description="Path (relative to the spec) of the compiled Pipeline/PipelineVersion YAML.",
    )
    steps: dict[Name, PipelineStep] = Field(
        description="Images of the pipeline's components (`mlp-pipeline compile` reads them)."
    )
    config_maps: dict[Name, dict[str, str]] = Field(
        {},
        description=(
            "ConfigMaps the pipeline's steps read in the cluster (e.g. the object-store endpoint)."
        ),
    )
    depends_on: tuple[Name, ...] = Field(
        (),
        description=(
            "Endpoints the run pods connect to; renders an egress NetworkPolicy `<name>-runs`."
        ),
    )
    run_pod_labels: Labels = Field(
        {"pipelines.kubeflow.org/v2_component": "true"},
        description="Labels KFP puts on the pods of a v2 run (the NetworkPolicy's pod selector).",
    )
    promotion: Promotion | None = Field(
        None,
        description="Split and gate settings of a training pipeline (defaults of its parameters).",
    )


BUILD_FOLDER = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")
PYTHON_PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*$")
BASE_IMAGE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def _build_folder(value: str) -> str:
    if not BUILD_FOLDER.match(value):
        raise ValueError(
            f"{value!r}: must be a folder relative to the repository root, e.g. components/serve "
            "(lowercase letters, digits, '-' and '_'; no '..', no leading '/' or '.')"
        )
    return value


def _python_package(value: str) -> str:
    if not PYTHON_PACKAGE.match(value):
        raise ValueError(f"{value!r}: must be a Python package name such as mlp_serve")
    return value


def _base_image(value: str) -> str:
    if not BASE_IMAGE.match(value) or not (":" in value.rsplit("/", 1)[-1] or "@" in value):
        raise ValueError(
            f"{value!r}: must be an image pinned by tag or digest, e.g. python:3.11-slim-bookworm"
            " or python:3.11-slim-bookworm@sha256:<64 hex characters>"
        )
    if value.split("@")[0].endswith(":latest"):
        raise ValueError(f"{value!r}: the base image must not float on latest")
    return value


def _single_line(value: str) -> str:
    if any(ch in value for ch in "\n\r\x00"):
        raise ValueError("must be one line (it is written into a Dockerfile)")
    return value


SingleLine = Annotated[str, AfterValidator(_single_line)]
"""Text written into a generated Dockerfile: one line, so it cannot start an instruction."""
BuildFolder = Annotated[str, AfterValidator(_build_folder)]
"""A folder relative to the repository root (a key of `builds.images`)."""
PythonPackage = Annotated[str, AfterValidator(_python_package)]


class ImageBuild(Strict):
    """One container image built from this repository. Its folder (the key) holds the code
    package, the pinned `requirements.txt` and the Dockerfile `platformgen render` writes."""

    repository: ImageRepository = Field(
        description=(
            "The image repository it is pushed to; components and pipeline steps name it "
            "as `image`."
        )
    )
    description: Annotated[SingleLine, Field(min_length=1)] = Field(
        description="What the image runs, for the Dockerfile's header comment."
    )
    package: PythonPackage = Field(
        description="The code package in the folder; the entrypoint is `python -m <package>`."
    )
    includes: tuple[BuildFolder, ...] = Field(
        (),
        description=(
            "Other builds whose packages this image carries too (the pipeline CLI imports"
            " the steps)."
        ),
    )
    args: tuple[str, ...] = Field((), description="Default arguments of the entrypoint (CMD).")
    env: dict[EnvName, SingleLine] = Field(
        {},
        description=(
            "Image defaults for the package's settings (the pod's env and config override them)."
        ),
    )
    port_env: EnvName | None = Field(
        None,
        description=(
            "Variable set to the image's one port (from the components that run it), so "
            "the port the program listens on is the port the spec declares."
        ),
    )
    notes: tuple[SingleLine, ...] = Field(
        (), description="Comment lines above USER: where the program finds its data at run time."
    )


class Builds(Strict):
    """The images built from this repository, one Dockerfile each from one template."""

    base_image: Annotated[str, AfterValidator(_base_image)] = Field(
        description=(
            "Base of every image (build and final stage), pinned by tag or digest: "
            "written once here, so a base bump or a digest pin is one edit that "
            "re-renders every Dockerfile."
        )
    )
    shared_packages: tuple[BuildFolder, ...] = Field(
        (), description="Package folders every image carries (the shared helper package)."
    )
    images: dict[BuildFolder, ImageBuild] = Field(
        {},
        description=(
            "Images by folder: `<folder>/Dockerfile` is rendered, "
            "`<folder>/requirements.txt` is installed."
        ),
    )


GitopsSource = Literal["kustomize", "helm"]
REPO_URL = re.compile(r"^(https://|ssh://|git@|file:///)\S+$")


def _repo_url(value: str) -> str:
    if not REPO_URL.match(value):
        raise ValueError(f"{value!r}: must be a Git URL (https://, ssh://, git@ or file:///)")
    return value


class GitopsCluster(Strict):
    """Where Argo CD deploys one environment, and how it syncs."""

    server: str = Field(
        default="https://kubernetes.default.svc",
        pattern=r"^https://\S+$",
        description="API server URL of the environment's cluster, as registered in Argo CD.",
    )
    auto_sync: bool = Field(
        False,
        description=(
            "Sync every new commit automatically, with prune and selfHeal; false: sync by hand."
        ),
    )
    progressive: bool = Field(
        False,
        description=(
            "Sync every new commit automatically in ordered steps (ApplicationSet RollingSync: "
            "the platform, then configuration and custom resources, then workloads, each step "
            "once the one before is Healthy), with prune. Replaces autoSync: Argo CD turns "
            "automated sync, and with it selfHeal, off on a RollingSync ApplicationSet's "
            "Applications. Needs the ApplicationSet controller's --enable-progressive-syncs."
        ),
    )


class Gitops(Strict):
    """Argo CD: the AppProject and ApplicationSets under `argocd/` (see README)."""

    repo_url: Annotated[str, AfterValidator(_repo_url)] = Field(
        alias="repoURL",
        description="The Git repository Argo CD reads (this repo); the AppProject allows only it.",
    )
    target_revision: str = Field(
        default="HEAD", min_length=1, description="Branch, tag or commit Argo CD deploys."
    )
    source: GitopsSource = Field(
        "kustomize",
        description=(
            "What the applications deploy: the kustomize overlays (one application per "
            "group), or the Helm chart (one application per environment, "
            "`values-<env>.yaml`)."
        ),
    )
    namespace: Name = Field(
        "argocd",
        description="Namespace Argo CD runs in; the AppProject and ApplicationSets go there.",
    )
    clusters: dict[Name, GitopsCluster] = Field(
        {},
        description=(
            "Per environment (a name from `environments`): cluster and sync mode. An "
            "environment not listed deploys to Argo CD's own cluster and syncs by hand."
        ),
    )


TenantRole = Literal["admin", "edit", "view"]
"""The platform's own tenant roles (ClusterRoles `<platform>-tenant-<role>`): `view` reads the
tenant's workloads, `edit` also runs pipelines, workloads and InferenceServices, `admin` also
manages who else gets access. None of them writes NetworkPolicies, quotas, LimitRanges,
ServiceAccounts or reads Secrets."""


class Subjects(Strict):
    """People and groups, as the cluster's authenticator names them."""

    users: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        (), description="User names (RBAC subjects of kind User)."
    )
    groups: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        (), description="Group names (RBAC subjects of kind Group)."
    )


class TenantQuota(Strict):
    """The tenant namespace's ResourceQuota. Every key has a modest default, so a tenant that
    declares nothing still gets a quota, never none."""

    cpu: Quantity = Field("4", description="requests.cpu summed over the namespace.")
    memory: Quantity = Field("16Gi", description="requests.memory summed over the namespace.")
    limits_cpu: Quantity = Field("8", description="limits.cpu summed over the namespace.")
    limits_memory: Quantity = Field("32Gi", description="limits.memory summed over the namespace.")
    gpu: int = Field(
        default=0, ge=0, description="requests.nvidia.com/gpu summed over the namespace."
    )
    storage: Quantity = Field(
        "50Gi", description="requests.storage summed over the namespace's PersistentVolumeClaims."
    )
    pods: int = Field(default=20, ge=0, description="Pods (not terminated) at once.")
    persistent_volume_claims: int = Field(default=5, ge=0, description="PersistentVolumeClaims.")
    services: int = Field(default=10, ge=0, description="Services.")
    config_maps: int = Field(default=50, ge=0, description="ConfigMaps.")
    secrets: int = Field(default=50, ge=0, description="Secrets.")


class TenantLimits(Strict):
    """The tenant namespace's LimitRange for containers: what a container gets when it asks
    for nothing, and the smallest and largest it may ask for."""

    default_request: ResourceList = Field(
        ResourceList(cpu="100m", memory="128Mi"),
        description="Requests of a container that sets none.",
    )
    default: ResourceList = Field(
        ResourceList(cpu="500m", memory="512Mi"),
        description="Limits of a container that sets none.",
    )
    min: ResourceList = Field(
        ResourceList(cpu="10m", memory="16Mi"),
        description="Smallest requests and limits a container may set.",
    )
    max: ResourceList = Field(
        ResourceList(cpu="4", memory="16Gi"),
        description="Largest requests and limits a container may set.",
    )


class ObjectStoreCredentials(Strict):
    """The tenant's own object-store credentials: a Secret in the tenant's namespace, created
    by its owners or the installer (never in git), which its KFP runs' launcher reads."""

    secret: Name = Field(
        "object-store-credentials", description="Name of the Secret in the tenant namespace."
    )
    access_key_key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        "accesskey", description="Key of the access key id in the Secret."
    )
    secret_key_key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        "secretkey", description="Key of the secret access key in the Secret."
    )


class Tenant(Strict):
    """A team: a namespace of its own (named after the tenant) with a quota, RBAC for its
    people, a service account for its pipeline runs, and network access to the platform
    services it declares, and to nothing else."""

    description: str = Field("", description="One line for humans.")
    owners: Subjects = Field(description="Bound to `ownerRole` in the tenant namespace.")
    members: Subjects = Field(
        Subjects(), description="Bound to `memberRole` in the tenant namespace."
    )
    owner_role: TenantRole = Field(
        "edit",
        description=(
            "The platform's tenant role owners get in the namespace (builders.tenant_roles)."
        ),
    )
    member_role: TenantRole = Field(
        "view",
        description=(
            "The platform's tenant role members get in the namespace (builders.tenant_roles)."
        ),
    )
    quota: TenantQuota = Field(TenantQuota(), description="ResourceQuota of the namespace.")
    limits: TenantLimits = Field(TenantLimits(), description="LimitRange of the namespace.")
    uses: tuple[Name, ...] = Field(
        (),
        description=(
            "Platform services (components or endpoints with ports) the tenant's pods may reach."
        ),
    )
    pipeline_root: str | None = Field(
        None,
        description=(
            "KFP defaultPipelineRoot; default `<tenancy.artifactRoot>/<tenant>/v2/artifacts`."
        ),
    )
    object_store: ObjectStoreCredentials = Field(
        ObjectStoreCredentials(),
        description=(
            "The credentials the tenant's runs use for its pipelineRoot (kfp-launcher "
            "`providers`), never the platform's: the `pipeline-runner` role may read "
            "exactly this Secret."
        ),
    )


class Tenancy(Strict):
    """Teams sharing the platform, in the spirit of Kubeflow profiles."""

    artifact_root: str = Field(
        default="minio://mlpipeline/private-artifacts",
        min_length=1,
        description="Object-store prefix under which each tenant's pipeline artifacts go.",
    )
    object_store_endpoint: str = Field(
        default="http://minio-service.kubeflow:9000",
        pattern=r"^https?://[^/\s]+$",
        description=(
            "URL (scheme, host, port) of the S3-compatible store behind the tenants' "
            "pipeline roots; http means the launcher connects without TLS (kfp-launcher "
            "`providers`)."
        ),
    )
    tenants: dict[Name, Tenant] = Field(
        {}, description="Tenants by name; the name is also the tenant's namespace."
    )

    def pipeline_root(self, tenant: str) -> str:
        """Where `tenant`'s pipeline artifacts go (KFP defaultPipelineRoot)."""
        declared = self.tenants[tenant].pipeline_root
        return declared or f"{self.artifact_root.rstrip('/')}/{tenant}/v2/artifacts"


class Platform(Strict):
    name: Name = Field(description="Short platform name (used in descriptions).")
    part_of: Name = Field(description="app.kubernetes.io/part-of on every object.")


class PlatformSpec(Strict):
    """The whole of `platform.yaml`."""

    platform: Platform
    namespaces: dict[Name, Labels] = Field(
        description="Platform namespaces (identical in every environment), with extra labels."
    )
    defaults: Defaults = Defaults()
    monitoring: Monitoring = Monitoring()
    endpoints: dict[Name, Endpoint] = Field(
        {}, description="Peers outside the platform (object stores, the KFP API, ingress gateways)."
    )
    components: dict[Name, Component]
    pipelines: dict[Name, Pipeline] = Field(
        {}, description="KFP pipelines whose compiled objects are placed into the base."
    )
    environments: dict[Name, Environment]
    gitops: Gitops | None = Field(
        None, description="Argo CD applications for every environment; absent: no `argocd/` folder."
    )
    tenancy: Tenancy = Field(
        Tenancy(),
        description="Teams with their own namespaces, quotas, RBAC and network isolation.",
    )
    builds: Builds | None = Field(
        None,
        description=(
            "Container images built from this repository; absent: no Dockerfiles are rendered."
        ),
    )
