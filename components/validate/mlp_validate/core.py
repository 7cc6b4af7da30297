"""Validate: check a dataset against a declared schema and report every violation.

Rules: required columns present (and no extra ones unless allowed), column types, value ranges,
null counts, minimum rows, target classes and class balance, and train/serve skew (mean shift
against reference statistics, in reference standard deviations). Each violation is one line naming
the column and the rule, e.g. ``column 'alcohol': 37 nulls, rule allows 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlp_common.statistics import feature_statistics

from mlp_validate.schema import ColumnRule, Schema


@dataclass
class Report:
    """The validation outcome: every violation, plus the statistics of the data."""

    violations: list[str] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    checks: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks, "violations": list(self.violations)}

    def render(self, dataset: str) -> str:
        """The readable report printed on failure."""
        lines = [f"{dataset}: {len(self.violations)} of {self.checks} checks failed"]
        lines += [f"  - {violation}" for violation in self.violations]
        return "\n".join(lines)


def _type_ok(series: pd.Series, kind: str) -> bool:
    if kind == "float":
        return pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series)
    if kind == "int":
        if pd.api.types.is_integer_dtype(series):
            return True
        values = series.dropna()
        return pd.api.types.is_float_dtype(series) and bool((values == values.round()).all())
    if kind == "bool":
        return pd.api.types.is_bool_dtype(series)
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def _check_column(series: pd.Series, rule: ColumnRule, report: Report) -> None:
    name = rule.name
    report.checks += 1
    nulls = int(series.isna().sum())
    if nulls > rule.max_nulls:
        report.violations.append(f"column '{name}': {nulls} nulls, rule allows {rule.max_nulls}")
    report.checks += 1
    if not _type_ok(series, rule.type):
        report.violations.append(f"column '{name}': type {series.dtype}, rule requires {rule.type}")
        return
    if rule.type not in ("float", "int"):
        return
    values = series.dropna().astype("float64")
    if rule.min is not None:
        report.checks += 1
        below = values[values < rule.min]
        if len(below):
            report.violations.append(
                f"column '{name}': {len(below)} values below min {rule.min:g} "
                f"(smallest {below.min():g})"
            )
    if rule.max is not None:
        report.checks += 1
        above = values[values > rule.max]
        if len(above):
            report.violations.append(
                f"column '{name}': {len(above)} values above max {rule.max:g} "
                f"(largest {above.max():g})"
            )


def _check_target(series: pd.Series, schema: Schema, report: Report) -> None:
    name = schema.target
    report.checks += 1
    nulls = int(series.isna().sum())
    if nulls:
        report.violations.append(f"target '{name}': {nulls} nulls, rule allows 0")
    counts = series.dropna().value_counts()
    if schema.classes is not None:
        report.checks += 1
        declared = {str(c) for c in schema.classes}
        unknown = sorted({str(v) for v in counts.index} - declared)
        if unknown:
            report.violations.append(
                f"target '{name}': unknown classes {unknown}, rule allows {sorted(declared)}"
            )
        missing = sorted(declared - {str(v) for v in counts.index})
        if missing:
            report.violations.append(f"target '{name}': classes {missing} have no rows")
    if schema.min_class_fraction > 0 and len(counts):
        report.checks += 1
        total = int(counts.sum())
        for label, count in counts.sort_index().items():
            fraction = count / total
            if fraction < schema.min_class_fraction:
                report.violations.append(
                    f"target '{name}': class {label!s} is {fraction:.1%} of rows, "
                    f"rule requires at least {schema.min_class_fraction:.1%} (class balance)"
                )


def _check_skew(
    statistics: dict[str, Any], reference: dict[str, Any], schema: Schema, report: Report
) -> None:
    limit = schema.max_mean_shift
    if limit is None:
        return
    for rule in schema.columns:
        current = statistics["columns"].get(rule.name, {})
        ref = reference.get("columns", {}).get(rule.name, {})
        if "mean" not in current or "mean" not in ref:
            continue
        report.checks += 1
        scale = ref.get("std") or 1.0
        shift = abs(current["mean"] - ref["mean"]) / scale
        if shift > limit:
            report.violations.append(
                f"column '{rule.name}': mean {current['mean']:.4g} is {shift:.2f} reference std "
                f"from the training mean {ref['mean']:.4g}, rule allows {limit:g} "
                "(train/serve skew)"
            )


def validate(
    frame: pd.DataFrame, schema: Schema, reference: dict[str, Any] | None = None
) -> Report:
    """Check ``frame`` against ``schema`` (and skew against ``reference`` statistics)."""
    report = Report()
    report.checks += 1
    if len(frame) < schema.min_rows:
        report.violations.append(
            f"dataset: {len(frame)} rows, rule requires at least {schema.min_rows}"
        )
    declared = {rule.name for rule in schema.columns} | {schema.target}
    for rule in schema.columns:
        report.checks += 1
        if rule.name not in frame.columns:
            report.violations.append(f"column '{rule.name}': missing, rule requires it")
            continue
        _check_column(frame[rule.name], rule, report)
    report.checks += 1
    if schema.target not in frame.columns:
        report.violations.append(f"target '{schema.target}': missing, rule requires it")
    else:
        _check_target(frame[schema.target], schema, report)
    if not schema.allow_extra_columns:
        report.checks += 1
        extra = [str(c) for c in frame.columns if c not in declared]
        if extra:
            report.violations.append(
                f"columns {extra}: not declared in the schema, rule allowExtraColumns is false"
            )
    features = [rule.name for rule in schema.columns if rule.name in frame.columns]
    report.statistics = feature_statistics(frame[features])
    if reference is not None:
        _check_skew(report.statistics, reference, schema, report)
    return report
