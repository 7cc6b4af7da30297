"""Rules for Spark components (kind SparkApplication), with their spec paths.

builders.spark_application turns each pod's resources into Spark's own fields: the CPU
request rounded up is the task slots, 60% of the memory request the JVM heap. Spark refuses a
heap under 450 MiB (1.5 x its 300 MiB reserve), so each memory request is at least 1Gi, and
both requests are required. spark-submit sets a pod's memory limit to its request (the
operator's `memoryLimit` is applied by its webhook only, which pod templates bypass), so a
different memory limit in the spec would be a promise the pod does not keep: refused. The
driver creates its executors through the Kubernetes API, so the spec must say where that is
(an endpoint marked `kubernetesApi`).
"""

from __future__ import annotations

from collections.abc import Iterator

from platformgen.quantity import parse_quantity
from platformgen.spec.effective import effective_resources
from platformgen.spec.model import Component, ComponentOverride, PlatformSpec, Resources

Problem = tuple[str, str]

MIN_MEMORY = "1Gi"
"""The smallest memory request of a Spark pod (module doc)."""


def _check_pod(path: str, resources: Resources) -> Iterator[Problem]:
    requests, limit = resources.requests, resources.limits.memory
    if requests.memory is not None and limit is not None:
        if parse_quantity(str(limit)) != parse_quantity(str(requests.memory)):
            yield (
                f"{path}.limits.memory",
                f"{limit} differs from requests.memory ({requests.memory}): spark-submit gives a "
                "Spark pod a memory limit equal to its request (heap plus overhead)",
            )
    for key, value in (("cpu", requests.cpu), ("memory", requests.memory)):
        if value is None:
            yield (
                f"{path}.requests.{key}",
                "is required: Spark sizes the pod's cores and heap by it",
            )
    if requests.memory is not None and parse_quantity(str(requests.memory)) < parse_quantity(
        MIN_MEMORY
    ):
        yield (
            f"{path}.requests.memory",
            f"{requests.memory} is below {MIN_MEMORY}: Spark needs a 450 MiB heap, which is 60% "
            "of the request",
        )


def check_spark(spec: PlatformSpec, name: str, c: Component) -> Iterator[Problem]:
    assert c.spark is not None
    s, path = c.spark, f"components.{name}"
    executors = s.executors
    if executors.min_executors > executors.max_executors:
        yield (
            f"{path}.spark.executors.minExecutors",
            f"{executors.min_executors} exceeds maxExecutors ({executors.max_executors})",
        )
    if s.driver_port == s.block_manager_port:
        yield (f"{path}.spark.blockManagerPort", f"{s.block_manager_port} is also the driverPort")
    yield from _check_pod(f"{path}.resources", effective_resources(spec, c, ComponentOverride()))
    where = f"{path}.spark.executors.resources"
    yield from _check_pod(where, executors.resources)
    for key in ("requests", "limits"):
        if getattr(executors.resources, key).ephemeral_storage is not None:
            yield (
                f"{where}.{key}.ephemeralStorage",
                "Spark sets an executor's cpu and memory only: bound its scratch with "
                "spark.executors.localDirSize",
            )
    for key in ("cpu", "memory"):  # the driver's: spec.admission, like every component's
        request = getattr(executors.resources.requests, key)
        limit = getattr(executors.resources.limits, key)
        if request is not None and limit is not None:
            if parse_quantity(str(request)) > parse_quantity(str(limit)):
                yield (where, f"the {key} request {request} exceeds the limit {limit}")
    for key in ("command", "ports"):
        if getattr(c, key):
            yield (
                f"{path}.{key}",
                "does not apply to kind SparkApplication (Spark runs "
                "spark.mainApplicationFile and opens its own ports)",
            )
    if not any(e.kubernetes_api for e in spec.endpoints.values()):
        yield (
            f"{path}.spark",
            "the Spark driver creates its executors through the Kubernetes API: declare the "
            "API server as an endpoint with kubernetesApi: true",
        )
    for env_name, env in spec.environments.items():
        override = env.components.get(name)
        if override is not None and override.resources is not None:
            yield (
                f"environments.{env_name}.components.{name}.resources",
                "a SparkApplication's resources are set once, in components."
                f"{name}.resources and spark.executors.resources",
            )
