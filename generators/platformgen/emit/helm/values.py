"""The chart's values: values.yaml (the defaults, which are base, one comment per key from
the spec model's field docs) and values-<env>.yaml (what each environment changes)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from platformgen.build import ComponentView, EnvironmentBuild, Workload, charted
from platformgen.build.chart import field_name
from platformgen.environments import image_pins
from platformgen.kinds import OPTIONAL_TUNABLES, tunables
from platformgen.serialize import HEADER
from platformgen.spec.model import (
    ComponentOverride,
    Defaults,
    PlatformSpec,
    ResourceList,
    Resources,
)

RESOURCE_NAMES = {"cpu": "cpu", "memory": "memory", "ephemeralStorage": "ephemeral-storage"}
"""ResourceList field -> Kubernetes resource name (values hold resources as the objects do)."""


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(by_alias=True, exclude_none=True)


def component_values(
    view: ComponentView, pins: dict[str, dict[str, str]], workload: Workload
) -> dict[str, Any]:
    """The chart values of one component in one environment (or base), from its view and
    what the build found of its workload."""
    c, o, kind_tunables = view.component, view.override, tunables(view.component.kind)
    image: dict[str, Any] = {"repository": c.image, "tag": view.spec.defaults.image_tag}
    pin = pins.get(c.image, {})
    if "newTag" in pin:
        image["tag"] = pin["newTag"]
    if "digest" in pin:
        image["digest"] = pin["digest"]
    out: dict[str, Any] = {"image": image}
    if "replicas" in kind_tunables:
        out["replicas"] = o.replicas if o.replicas is not None else c.replicas
    out["resources"] = workload.resources
    out["env"] = {**c.env, **(o.env or {}), **view.model_env, **view.pipeline_env}
    for knob in OPTIONAL_TUNABLES:
        if knob in kind_tunables:
            out[knob] = _dump(getattr(o, field_name(ComponentOverride, knob)))
    if "suspend" in kind_tunables:
        out["suspend"] = bool(o.suspend)
    exceptions: dict[str, dict[str, str]] = {}
    for tool, check, reason in workload.waivers:
        exceptions.setdefault(tool, {})[check] = reason
    out["policyExceptions"] = exceptions
    return out


def chart_values(built: EnvironmentBuild, spec: PlatformSpec) -> dict[str, Any]:
    """Every value of the chart in one built environment (base: the chart's defaults)."""
    environment = built.environment
    pins = image_pins(spec, environment) if environment is not None else {}
    return {
        "environment": environment,
        "logLevel": built.log_level or spec.defaults.log_level,
        "components": {
            view.name: component_values(view, pins, built.workloads[view.name])
            for view in built.views
            if charted(view)
        },
    }


def values_difference(base: Any, env: Any) -> Any:
    """What `env` changes about `base`, as a values file Helm merges over the defaults."""
    out = {}
    for key, value in env.items():
        old = base.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            sub = values_difference(old, value)
            if sub:
                out[key] = sub
        elif key not in base or old != value:
            out[key] = value
    return out


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Field alias -> the field's description (`Field(description=...)` in spec/model.py)."""
    return {
        info.alias or name: info.description
        for name, info in model.model_fields.items()
        if info.description is not None
    }


KNOB_DOCS: dict[str, str] = {
    **{k: v for k, v in field_docs(ComponentOverride).items()},
    "policyExceptions": "Policy checks (checkov, kube-linter, kube-score) waived on the"
    " component's workload, each with its reason: the component's, the environment's and those"
    " the builder derives from the spec (its annotations number them in sorted order).",
    "image": "Image of the component's container: repository, and a tag or a digest.",
    "resources": "Requests and limits of the component's container, as in the object "
    "(defaults <- component <- environment).",
    "env": "Environment variables of the component's container, besides LOG_LEVEL (and"
    " secretEnv, fixed in the template).",
    "repository": "Image repository without tag.",
    "tag": "Image tag (unused when a digest is set).",
    "digest": "Image digest, sha256:<64 hex>; preferred over the tag.",
    "logLevel": field_docs(Defaults)["logLevel"],
    "environment": "The environment these values render (values-<env>.yaml sets it; null:"
    " none). It selects the environment's content-named objects (Jobs, PipelineVersions),"
    " which platformgen renders whole because their name is a hash of their content.",
    "components": "Per component (name = object name), what an environment may change.",
    "limits": field_docs(Resources)["limits"],
    "requests": field_docs(Resources)["requests"],
    **{RESOURCE_NAMES[alias]: doc for alias, doc in field_docs(ResourceList).items()},
}


FLOW_KEYS = frozenset({"env", "policyExceptions"})
"""Values written on one line: their keys are data (variable names, check ids), not knobs."""


def values_yaml(values: dict[str, Any], spec: PlatformSpec) -> str:
    """values.yaml: the defaults (= base), one comment per key."""
    lines: list[str] = []
    flow: dict[tuple[str, str], str] = {}
    """(key, repr(value)) -> its line: most values repeat across components (`env: {}`), and
    PyYAML's pure-Python emitter is the cost; repr tells apart what YAML writes differently
    (1, True, '1', 1.0)."""

    def write(value: Any, indent: int) -> None:
        for key, item in value.items():
            if indent == 2:
                component = spec.components[key]
                doc = f"{key}: {component.kind}. {component.description}".strip()
            else:
                doc = KNOB_DOCS[key]
            lines.append(" " * indent + f"# {doc}")
            if isinstance(item, dict) and item and key not in FLOW_KEYS:
                lines.append(" " * indent + f"{_key(key)}:")
                write(item, indent + 2)
            else:
                memo = (key, repr(item))
                if memo not in flow:
                    dumped = yaml.safe_dump({key: item}, default_flow_style=True, width=10000)
                    flow[memo] = dumped.strip().removeprefix("{").removesuffix("}")
                lines.append(" " * indent + flow[memo])

    write(values, 0)
    return HEADER + "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return yaml.safe_dump(key).removesuffix("\n...\n").strip()
