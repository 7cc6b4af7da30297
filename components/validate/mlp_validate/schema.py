"""The declared dataset schema (YAML) and its loader. Unknown keys are rejected.

::

    minRows: 100                    # optional, default 1
    allowExtraColumns: false        # optional, default false
    target: {name: target, classes: [0, 1, 2], minClassFraction: 0.15}
    skew: {maxMeanShift: 1.0}       # optional: train/serve skew rule, in reference std units
    columns:
      alcohol: {type: float, min: 8, max: 18, maxNulls: 0}

Column ``type`` is ``float``, ``int``, ``bool`` or ``string``; ``min``/``max`` are optional and
apply to numeric columns; ``maxNulls`` defaults to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from mlp_common.step import StepError

COLUMN_TYPES = ("float", "int", "bool", "string")
EMBEDDED = ("digits", "wine")


@dataclass(frozen=True)
class ColumnRule:
    name: str
    type: str
    min: float | None
    max: float | None
    max_nulls: int


@dataclass(frozen=True)
class Schema:
    columns: tuple[ColumnRule, ...]
    target: str
    classes: tuple[Any, ...] | None
    min_class_fraction: float
    max_mean_shift: float | None
    min_rows: int
    allow_extra_columns: bool


class SchemaError(StepError):
    """The schema file itself is wrong. Lists every problem with its path."""


def _keys(doc: Any, where: str, allowed: set[str], problems: list[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        problems.append(f"{where}: must be a mapping")
        return {}
    for key in sorted(set(doc) - allowed):
        problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return doc


def _number(value: Any, where: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: must be a number")
        return None
    return float(value)


def parse_schema(document: Any, origin: str) -> Schema:
    """Build a :class:`Schema` from parsed YAML; raise one SchemaError listing every problem."""
    problems: list[str] = []
    top = _keys(
        document,
        origin,
        {"minRows", "allowExtraColumns", "target", "skew", "columns"},
        problems,
    )
    target = _keys(
        top.get("target"), f"{origin}: target", {"name", "classes", "minClassFraction"}, problems
    )
    skew = _keys(top.get("skew") or {}, f"{origin}: skew", {"maxMeanShift"}, problems)
    target_name = target.get("name")
    if not isinstance(target_name, str) or not target_name:
        problems.append(f"{origin}: target.name: required string")
    classes = target.get("classes")
    if classes is not None and (not isinstance(classes, list) or not classes):
        problems.append(f"{origin}: target.classes: must be a non-empty list")
    fraction = _number(
        target.get("minClassFraction", 0.0), f"{origin}: target.minClassFraction", problems
    )
    columns: list[ColumnRule] = []
    raw_columns = top.get("columns")
    if not isinstance(raw_columns, dict) or not raw_columns:
        problems.append(f"{origin}: columns: required non-empty mapping of column name to rule")
        raw_columns = {}
    for name, rule in raw_columns.items():
        where = f"{origin}: columns.{name}"
        body = _keys(rule, where, {"type", "min", "max", "maxNulls"}, problems)
        kind = body.get("type")
        if kind not in COLUMN_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(COLUMN_TYPES)}")
        max_nulls = body.get("maxNulls", 0)
        if not isinstance(max_nulls, int) or isinstance(max_nulls, bool) or max_nulls < 0:
            problems.append(f"{where}.maxNulls: must be an integer >= 0")
            max_nulls = 0
        low = _number(body.get("min"), f"{where}.min", problems)
        high = _number(body.get("max"), f"{where}.max", problems)
        if low is not None and high is not None and low > high:
            problems.append(f"{where}: min {low} is greater than max {high}")
        columns.append(ColumnRule(str(name), str(kind), low, high, max_nulls))
    min_rows = top.get("minRows", 1)
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 1:
        problems.append(f"{origin}: minRows: must be an integer >= 1")
        min_rows = 1
    extra = top.get("allowExtraColumns", False)
    if not isinstance(extra, bool):
        problems.append(f"{origin}: allowExtraColumns: must be true or false")
    shift = _number(skew.get("maxMeanShift"), f"{origin}: skew.maxMeanShift", problems)
    if problems:
        raise SchemaError("invalid schema:\n  " + "\n  ".join(problems))
    return Schema(
        columns=tuple(columns),
        target=str(target_name),
        classes=tuple(classes) if classes else None,
        min_class_fraction=fraction or 0.0,
        max_mean_shift=shift,
        min_rows=int(min_rows),
        allow_extra_columns=bool(extra),
    )


def load_schema(reference: str) -> Schema:
    """Load ``embedded:<name>`` (shipped in this package) or a YAML file path."""
    if reference.startswith("embedded:"):
        name = reference.split(":", 1)[1]
        if name not in EMBEDDED:
            raise SchemaError(
                f"--schema {reference}: expected one of embedded:{', embedded:'.join(EMBEDDED)}"
            )
        text = resources.files("mlp_validate").joinpath(f"schemas/{name}.yaml").read_text("utf-8")
    else:
        path = Path(reference)
        if not path.is_file():
            raise SchemaError(f"--schema {reference}: no such file")
        text = path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"{reference}: not valid YAML: {exc}") from exc
    return parse_schema(document, reference)
