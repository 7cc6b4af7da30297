"""The hyperparameter search space: one data module for Katib and for ``make tune``.

Each parameter's ``name`` is the train CLI option (``--<name>``), the Katib parameter name and
(camelCased) the Katib trial parameter name. ``type`` is a Katib ``parameterType``: ``double``,
``int`` or ``categorical``. Numeric parameters have ``min``/``max``; categorical ones a ``values``
list. :func:`katib_parameters` and :func:`katib_trial_arguments` give the Katib shapes, so the
generated Experiment and the local tuner cannot drift apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

OBJECTIVE_METRIC = "val_accuracy"
OBJECTIVE_TYPE = "maximize"
ADDITIONAL_METRICS = ("val_loss",)


@dataclass(frozen=True)
class Parameter:
    """One searchable hyperparameter."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()

    @property
    def trial_name(self) -> str:
        """camelCase name used in ``${trialParameters.<trial_name>}``."""
        head, *rest = self.name.split("-")
        return head + "".join(part.capitalize() for part in rest)


SEARCH_SPACE: tuple[Parameter, ...] = (
    Parameter("learning-rate", "double", min=0.001, max=0.05),
    Parameter("hidden-units", "int", min=8, max=64),
    Parameter("dropout", "double", min=0.0, max=0.4),
    Parameter("batch-size", "categorical", values=("16", "32", "64")),
)


def _number(value: float, kind: str) -> str:
    return str(int(value)) if kind == "int" else repr(float(value))


def katib_parameters() -> list[dict[str, Any]]:
    """``spec.parameters`` of a Katib ``kubeflow.org/v1beta1`` Experiment."""
    out: list[dict[str, Any]] = []
    for parameter in SEARCH_SPACE:
        if parameter.type == "categorical":
            space: dict[str, Any] = {"list": list(parameter.values)}
        else:
            assert parameter.min is not None and parameter.max is not None
            space = {
                "min": _number(parameter.min, parameter.type),
                "max": _number(parameter.max, parameter.type),
            }
        out.append(
            {"name": parameter.name, "parameterType": parameter.type, "feasibleSpace": space}
        )
    return out


def katib_trial_parameters() -> list[dict[str, str]]:
    """``spec.trialTemplate.trialParameters``: trial name -> search parameter reference."""
    return [
        {"name": p.trial_name, "reference": p.name, "description": f"--{p.name} of mlp-train"}
        for p in SEARCH_SPACE
    ]


def katib_trial_arguments() -> list[str]:
    """The train CLI arguments of a Katib trial (``--learning-rate=${trialParameters....}``)."""
    return [f"--{p.name}=${{trialParameters.{p.trial_name}}}" for p in SEARCH_SPACE]


def katib_objective() -> dict[str, Any]:
    """``spec.objective``: what Katib reads from the trial's stdout."""
    return {
        "type": OBJECTIVE_TYPE,
        "objectiveMetricName": OBJECTIVE_METRIC,
        "additionalMetricNames": list(ADDITIONAL_METRICS),
    }


def sample(rng: random.Random) -> dict[str, str]:
    """One random point, as CLI option values (what Katib's random algorithm does)."""
    point: dict[str, str] = {}
    for parameter in SEARCH_SPACE:
        if parameter.type == "categorical":
            point[parameter.name] = rng.choice(parameter.values)
        elif parameter.type == "int":
            assert parameter.min is not None and parameter.max is not None
            point[parameter.name] = str(rng.randint(int(parameter.min), int(parameter.max)))
        else:
            assert parameter.min is not None and parameter.max is not None
            point[parameter.name] = f"{rng.uniform(parameter.min, parameter.max):.6g}"
    return point
