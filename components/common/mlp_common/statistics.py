"""Per-feature summary statistics: the reference for train/serve skew and drift checks.

``statistics.json`` (written by ``validate``, copied into each registered model version) is::

    {"rows": 178, "columns": {"alcohol": {"count", "nulls", "mean", "std", "min", "max",
                                          "quantiles": [q0, q10, ..., q100],
                                          "histogram": {"edges": [...], "counts": [...]}}, ...}}

Non-numeric columns carry only ``count`` and ``nulls``. ``histogram`` (added for the drift
monitor; older files lack it) bins the non-null values at the inner deciles, deduplicated for
discrete columns (:func:`bin_edges`); bins are right-closed (:func:`bin_counts`), so ``counts``
has one entry more than ``edges``. The statistics are computed in one streaming pass over batches
(:class:`StatisticsAccumulator`), exactly equal to the in-memory ones for columns of up to
:data:`DISTINCT_LIMIT` distinct values (:class:`ColumnSummary`). The drift monitor bins served
values with the same edges and compares proportions (PSI); readers that do not know the key
ignore it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

QUANTILES = tuple(i / 10 for i in range(11))
HISTOGRAM_BINS = 10
"""Quantile bins of a column's histogram (fewer when quantiles coincide)."""


def bin_edges(values: npt.ArrayLike, bins: int = HISTOGRAM_BINS) -> npt.NDArray[np.float64]:
    """Inner bin edges at the quantiles of ``values``, deduplicated for discrete columns."""
    qs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.unique(np.quantile(np.asarray(values, dtype=np.float64), qs))


def bin_counts(edges: npt.ArrayLike, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts of ``values`` in the ``len(edges) + 1`` right-closed bins ``(-inf, e0], (e0, e1],
    ..., (e_last, inf)``: a value equal to an edge falls in the lower bin, so a constant column
    still gets a bin of its own and any new value lands outside it."""
    edges = np.asarray(edges, dtype=np.float64)
    index = np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="left")
    return np.bincount(index, minlength=edges.size + 1).astype(np.int64)


def histogram(values: npt.ArrayLike, bins: int = HISTOGRAM_BINS) -> dict[str, list[Any]]:
    """``{"edges": [...], "counts": [...]}`` of ``values`` (see :func:`bin_edges`)."""
    edges = bin_edges(values, bins)
    return {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in bin_counts(edges, values)],
    }


DISTINCT_LIMIT = 16_384
"""Distinct values a column's summary keeps exactly; more, and values are rounded (see below)."""
PRECISIONS = (52, 20, 16, 12, 10, 8, 6, 4, 2, 0)
"""Mantissa bits kept, in the order a summary gives them up."""


def truncate(values: npt.NDArray[np.float64], bits: int) -> npt.NDArray[np.float64]:
    """``values`` with the float64 mantissa cut to ``bits`` bits (toward zero). Cutting to
    ``b`` bits and then to fewer equals cutting to fewer at once, so summaries merge exactly."""
    if bits >= 52:
        return values
    mask = np.uint64(~((1 << (52 - bits)) - 1) & 0xFFFFFFFFFFFFFFFF)
    return (values.view(np.uint64) & mask).view(np.float64)


def quantiles_of_counts(
    values: npt.NDArray[np.float64], counts: npt.NDArray[np.int64], qs: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """``numpy.quantile(data, qs)`` (method ``linear``) of the data whose sorted distinct values
    are ``values`` with multiplicities ``counts``: the same numbers, from the counts alone."""
    q = np.asarray(qs, dtype=np.float64)
    n = int(counts.sum())
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    above = virtual >= n - 1
    low = np.where(above, n - 1, previous).astype(np.int64)
    high = np.where(above, n - 1, previous + 1).astype(np.int64)
    ends = np.cumsum(counts)
    a = values[np.searchsorted(ends, low, side="right")]
    b = values[np.searchsorted(ends, high, side="right")]
    gamma = virtual - np.where(above, -1, previous)
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


class ColumnSummary:
    """The statistics of one column, accumulated over batches in bounded memory.

    Numeric values are kept as sorted distinct values with counts, which merge exactly: up to
    :data:`DISTINCT_LIMIT` distinct values the summary is exact and the statistics equal those
    of the whole column in memory (``numpy.quantile`` deciles, histogram counts, mean and
    population std), whatever the batching and row order. A column with more distinct values
    keeps fewer mantissa bits (:data:`PRECISIONS`, the first level that fits), so quantiles and
    histograms are those of the values rounded to ``precision`` bits (relative error below
    2**-precision) and the mean and std come from exact running sums (``math.fsum``). The level
    reached depends only on the data, not on the order it came in."""

    def __init__(self, numeric: bool) -> None:
        self.numeric = numeric
        self.count = 0
        self.nulls = 0
        self.precision = PRECISIONS[0]
        self.values = np.zeros(0, dtype=np.float64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.sums: list[float] = []
        self.squares: list[float] = []

    def add(self, series: pd.Series) -> None:
        present = series.notna()
        self.count += int(present.sum())
        self.nulls += int((~present).sum())
        if not self.numeric:
            return
        values = series[present].to_numpy(dtype=np.float64)
        if not values.size:
            return
        self.sums.append(math.fsum(values))
        self.squares.append(math.fsum(values * values))
        distinct, counts = np.unique(truncate(values, self.precision), return_counts=True)
        self._merge(distinct, counts.astype(np.int64))
        level = PRECISIONS.index(self.precision)
        while self.values.size > DISTINCT_LIMIT and level + 1 < len(PRECISIONS):
            level += 1
            self.precision = PRECISIONS[level]
            old_values, old_counts = self.values, self.counts
            self.values, self.counts = np.zeros(0), np.zeros(0, dtype=np.int64)
            self._merge(truncate(old_values, self.precision), old_counts)

    def _merge(self, values: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]) -> None:
        merged, inverse = np.unique(np.concatenate([self.values, values]), return_inverse=True)
        total = np.zeros(merged.size, dtype=np.int64)
        np.add.at(total, inverse, np.concatenate([self.counts, counts]))
        self.values, self.counts = merged, total

    def result(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"count": self.count, "nulls": self.nulls}
        if not self.numeric or not self.values.size:
            return stats
        n = int(self.counts.sum())
        if self.precision == PRECISIONS[0]:
            mean = math.fsum(self.values * self.counts) / n
            variance = math.fsum(self.counts * (self.values - mean) ** 2) / n
        else:
            mean = math.fsum(self.sums) / n
            variance = max(math.fsum(self.squares) / n - mean * mean, 0.0)
        inner = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)[1:-1]
        edges = np.unique(quantiles_of_counts(self.values, self.counts, inner))
        bins = np.searchsorted(edges, self.values, side="left")
        histogram_counts = np.bincount(bins, weights=self.counts, minlength=edges.size + 1)
        stats.update(
            {
                "mean": float(mean),
                "std": float(math.sqrt(variance)),
                "min": float(self.values[0]),
                "max": float(self.values[-1]),
                "quantiles": [
                    float(q) for q in quantiles_of_counts(self.values, self.counts, QUANTILES)
                ],
                "histogram": {
                    "edges": [float(e) for e in edges],
                    "counts": [int(c) for c in histogram_counts],
                },
            }
        )
        if self.precision != PRECISIONS[0]:
            stats["precision"] = self.precision
        return stats


def is_numeric(dtype: Any) -> bool:
    """Columns that get moments and quantiles: numbers, not booleans."""
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


class StatisticsAccumulator:
    """:func:`feature_statistics` over batches: :meth:`add` each, then :meth:`result`."""

    def __init__(self, dtypes: dict[str, Any]) -> None:
        self.rows = 0
        self.columns = {name: ColumnSummary(is_numeric(dtype)) for name, dtype in dtypes.items()}

    def add(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        for name, summary in self.columns.items():
            summary.add(frame[name])

    def result(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {name: summary.result() for name, summary in self.columns.items()},
        }


def column_statistics(series: pd.Series) -> dict[str, Any]:
    """Summary of one column (numeric columns get moments and deciles)."""
    summary = ColumnSummary(is_numeric(series.dtype))
    summary.add(series)
    return summary.result()


def feature_statistics(frame: pd.DataFrame) -> dict[str, Any]:
    """Statistics of every column of ``frame`` (one batch of :class:`StatisticsAccumulator`)."""
    accumulator = StatisticsAccumulator({str(name): frame[name].dtype for name in frame.columns})
    accumulator.add(frame.set_axis([str(c) for c in frame.columns], axis=1))
    return accumulator.result()
