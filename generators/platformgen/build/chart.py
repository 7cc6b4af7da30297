"""The chart's sources: each charted component built with placeholders at its tunables.

The Helm emitter turns a component's objects into a template that reads like the base object
and differs from it only where an environment may change something (kinds.tunables). To find
those places, the component is built here, once, with a typed `Placeholder` (a str that
knows its values path) in place of every tunable scalar (replicas, each field of an optional
tunable's model), once per optional tunable set (what it adds or removes is what the
template wraps in `{{- if }}`); the builders record which objects carry the component's
waivers. The emitter only turns placeholders into Go template actions; it never calls a
builder.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from platformgen.builders import Carried, build_component_waived
from platformgen.environments import identity
from platformgen.kinds import OPTIONAL_TUNABLES, traits, tunables
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView
from platformgen.spec.model import (
    Autoscaling,
    Canary,
    ComponentOverride,
    DisruptionBudget,
    ModelPin,
    TopologySpread,
)
from platformgen.waivers import Waiver, exception_annotations

KNOB_MODELS: dict[str, type[BaseModel]] = {
    "autoscaling": Autoscaling,
    "disruptionBudget": DisruptionBudget,
    "topologySpread": TopologySpread,
    "model": ModelPin,
    "canary": Canary,
}
"""The optional tunables' spec models: values, placeholders and schema all come from these."""

OPEN = "\ue000" + secrets.token_hex(8) + ":"
CLOSE = "\ue001"
"""Around a placeholder's path in its text, only seen where a builder formats a tunable into a
longer string (`f"{model.name} version {pin.version}"`): a private-use character and a nonce
drawn per process, so no spec string can pass for a placeholder. The text never reaches the
output (the writer turns every placeholder into an action and checks none is left), so the
output stays the same from run to run."""

Identity = tuple[str, str, str, str]


class Placeholder(str):
    """A tunable scalar, standing in a built object for the component's chart value.

    A str, so builders pass it through like the value it replaces (and json, sorting and
    f-strings work on it); the Helm emitter finds it by type where it is a whole value, and by
    its text (OPEN path CLOSE) where a builder formatted it into a longer string."""

    path: str
    """The value's path below the component's values: `replicas`, `autoscaling.minReplicas`."""
    optional: bool
    """The value may be null (an optional field of a tunable's model): rendered only if set."""

    def __new__(cls, path: str, optional: bool = False) -> Placeholder:
        made = super().__new__(cls, f"{OPEN}{path}{CLOSE}")
        made.path = path
        made.optional = optional
        return made

    def __getnewargs__(self) -> tuple[str, bool]:  # type: ignore[override]
        return (self.path, self.optional)


class Placeholders:
    """The placeholders of one component, in the order they are made."""

    def __init__(self) -> None:
        self.items: list[Placeholder] = []

    def add(self, placeholder: Placeholder) -> Placeholder:
        self.items.append(placeholder)
        return placeholder


@dataclass(frozen=True)
class Carrier:
    """An object carrying the component's waivers (its workload, a TrainingRuntime)."""

    waivers: list[Waiver]
    """The waivers on it, sorted."""
    keys: frozenset[str]
    """Its annotations that write them (the rest are fixed data)."""


@dataclass(frozen=True)
class ChartSource:
    """One charted component, built for its template."""

    view: ComponentView
    """Its base view."""
    plain: ComponentView
    """The view built: as in an environment, placeholders at the scalars, no environment
    waivers."""
    placeholders: tuple[Placeholder, ...]
    built: list[Manifest]
    """build_component(plain): the objects the template is made of."""
    knobs: Mapping[str, list[Manifest]]
    """Per optional tunable of its kind, the objects built with that tunable set (to
    placeholders)."""
    carriers: Mapping[Identity, Carrier]
    own_waivers: frozenset[tuple[str, str]]
    """(tool, check) of the plain workload's waivers: those the chart's values hold."""


def field_name(model: type[BaseModel], alias: str) -> str:
    """The Python name of `model`'s field spelled `alias` in YAML."""
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return name
    raise KeyError(alias)


def workload(view: ComponentView, built: list[Manifest]) -> Manifest:
    """The object that runs the component's container among `built` (its objects in `view`)."""
    kind = traits(view.component.kind).object_kind or view.component.kind
    (found,) = [m for m in built if m["kind"] == kind]
    return found


def workload_waivers(view: ComponentView, carried: Carried) -> list[Waiver]:
    """Every waiver on the component's workload: the spec's and the environment's
    (view.policy_exceptions) and those the builder derives (a Knative InferenceService
    waives the queue-proxy's liveness probe, say), as the builder recorded them
    (builders.build_component_waived), so one list feeds the chart's helper and the numbering
    of `checkov.io/skipN` stays the builder's."""
    kind = traits(view.component.kind).object_kind or view.component.kind
    (found,) = [waivers for m, waivers in carried if m["kind"] == kind]
    return found


def _placeholder_model(
    model: type[BaseModel], prefix: str, placeholders: Placeholders
) -> BaseModel:
    fields = {
        name: placeholders.add(
            Placeholder(f"{prefix}.{info.alias or name}", optional=info.default is None)
        )
        for name, info in model.model_fields.items()
    }
    return model.model_construct(None, **fields)


def _carriers(carried: Carried) -> dict[Identity, Carrier]:
    """Objects that carry the component's policy waivers (its workload, and e.g. a Trainer
    TrainingRuntime that holds the pod template)."""
    return {
        identity(m): Carrier(waivers, frozenset(exception_annotations(waivers)))
        for m, waivers in carried
    }


def chart_source(view: ComponentView) -> ChartSource:
    """The builds the chart's templates of one component (`view`: its base view) are made of."""
    kind_tunables = tunables(view.component.kind)
    placeholders = Placeholders()
    scalars: dict[str, Any] = {}
    if "replicas" in kind_tunables:
        scalars["replicas"] = placeholders.add(Placeholder("replicas"))
    plain = dataclasses.replace(
        view,
        is_base=False,
        environment_exceptions=(),
        override=ComponentOverride.model_construct(None, **scalars),
    )
    built, carried = build_component_waived(plain)
    knobs = {}
    for knob in OPTIONAL_TUNABLES:
        if knob not in kind_tunables:
            continue
        model = _placeholder_model(KNOB_MODELS[knob], knob, placeholders)
        override = plain.override.model_copy(update={field_name(ComponentOverride, knob): model})
        knobs[knob] = build_component_waived(dataclasses.replace(plain, override=override))[0]
    return ChartSource(
        view=view,
        plain=plain,
        placeholders=tuple(placeholders.items),
        built=built,
        knobs=knobs,
        carriers=_carriers(carried),
        own_waivers=frozenset((tool, check) for tool, check, _ in workload_waivers(plain, carried)),
    )
