"""Validate: check a dataset against a declared schema and report every violation.

Rules: required columns present (and no extra ones unless allowed), column types, value ranges,
null counts, minimum rows, target classes and class balance, and train/serve skew (mean shift
against reference statistics, in reference standard deviations). Each violation is one line naming
the column and the rule, e.g. ``column 'alcohol': 37 nulls, rule allows 0``. Every rule and the
statistics are checked in one pass over the dataset's batches (:func:`validate_batches`), so the
memory a validation needs does not grow with the data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlp_common.statistics import StatisticsAccumulator

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


def _type_ok(dtype: Any, kind: str, integral: bool) -> bool:
    if kind == "float":
        return pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)
    if kind == "int":
        return pd.api.types.is_integer_dtype(dtype) or (
            pd.api.types.is_float_dtype(dtype) and integral
        )
    if kind == "bool":
        return pd.api.types.is_bool_dtype(dtype)
    return pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)


@dataclass
class ColumnCheck:
    """What the rules of one column need, accumulated over batches."""

    rule: ColumnRule
    dtype: Any
    nulls: int = 0
    integral: bool = True
    below: int = 0
    smallest: float = math.inf
    above: int = 0
    largest: float = -math.inf

    def add(self, series: pd.Series) -> None:
        self.nulls += int(series.isna().sum())
        if not pd.api.types.is_numeric_dtype(self.dtype) or pd.api.types.is_bool_dtype(self.dtype):
            return
        values = series.dropna().to_numpy(dtype="float64")
        self.integral = self.integral and bool((values == values.round()).all())
        if self.rule.min is not None:
            below = values[values < self.rule.min]
            self.below += below.size
            self.smallest = min(self.smallest, float(below.min())) if below.size else self.smallest
        if self.rule.max is not None:
            above = values[values > self.rule.max]
            self.above += above.size
            self.largest = max(self.largest, float(above.max())) if above.size else self.largest

    def report(self, report: Report) -> None:
        rule, name = self.rule, self.rule.name
        report.checks += 1
        if self.nulls > rule.max_nulls:
            report.violations.append(
                f"column '{name}': {self.nulls} nulls, rule allows {rule.max_nulls}"
            )
        report.checks += 1
        if not _type_ok(self.dtype, rule.type, self.integral):
            report.violations.append(
                f"column '{name}': type {self.dtype}, rule requires {rule.type}"
            )
            return
        if rule.type not in ("float", "int"):
            return
        if rule.min is not None:
            report.checks += 1
            if self.below:
                report.violations.append(
                    f"column '{name}': {self.below} values below min {rule.min:g} "
                    f"(smallest {self.smallest:g})"
                )
        if rule.max is not None:
            report.checks += 1
            if self.above:
                report.violations.append(
                    f"column '{name}': {self.above} values above max {rule.max:g} "
                    f"(largest {self.largest:g})"
                )


def _check_target(counts: pd.Series, nulls: int, schema: Schema, report: Report) -> None:
    name = schema.target
    report.checks += 1
    if nulls:
        report.violations.append(f"target '{name}': {nulls} nulls, rule allows 0")
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
    return validate_batches(dict(frame.dtypes), [frame], schema, reference)


def validate_batches(
    dtypes: dict[str, Any],
    batches: Iterable[pd.DataFrame],
    schema: Schema,
    reference: dict[str, Any] | None = None,
) -> Report:
    """:func:`validate` of a table with columns ``dtypes`` read as ``batches``: one pass, in
    memory bounded by a batch (statistics: :class:`StatisticsAccumulator`)."""
    report = Report()
    checks = [
        ColumnCheck(rule, dtypes[rule.name]) for rule in schema.columns if rule.name in dtypes
    ]
    features = {rule.name: dtypes[rule.name] for rule in schema.columns if rule.name in dtypes}
    statistics = StatisticsAccumulator(features)
    has_target = schema.target in dtypes
    counts = pd.Series(dtype="int64")
    target_nulls, rows = 0, 0
    for batch in batches:
        rows += len(batch)
        for check in checks:
            check.add(batch[check.rule.name])
        statistics.add(batch)
        if has_target:
            target = batch[schema.target]
            target_nulls += int(target.isna().sum())
            counts = counts.add(target.dropna().value_counts(), fill_value=0).astype("int64")
    report.checks += 1
    if rows < schema.min_rows:
        report.violations.append(f"dataset: {rows} rows, rule requires at least {schema.min_rows}")
    declared = {rule.name for rule in schema.columns} | {schema.target}
    by_name = {check.rule.name: check for check in checks}
    for rule in schema.columns:
        report.checks += 1
        if rule.name not in by_name:
            report.violations.append(f"column '{rule.name}': missing, rule requires it")
            continue
        by_name[rule.name].report(report)
    report.checks += 1
    if not has_target:
        report.violations.append(f"target '{schema.target}': missing, rule requires it")
    else:
        _check_target(counts, target_nulls, schema, report)
    if not schema.allow_extra_columns:
        report.checks += 1
        extra = [str(c) for c in dtypes if c not in declared]
        if extra:
            report.violations.append(
                f"columns {extra}: not declared in the schema, rule allowExtraColumns is false"
            )
    report.statistics = statistics.result()
    if reference is not None:
        _check_skew(report.statistics, reference, schema, report)
    return report
