"""Per-feature summary statistics: the reference for train/serve skew and drift checks.

``statistics.json`` (written by ``validate``, copied into each registered model version) is::

    {"rows": 178, "columns": {"alcohol": {"count", "nulls", "mean", "std", "min", "max",
                                          "quantiles": [q0, q10, ..., q100],
                                          "histogram": {"edges": [...], "counts": [...]}}, ...}}

Non-numeric columns carry only ``count`` and ``nulls``. ``histogram`` (added for the drift
monitor; older files lack it) bins the non-null values at the inner deciles, deduplicated for
discrete columns (:func:`bin_edges`); bins are right-closed (:func:`bin_counts`), so ``counts``
has one entry more than ``edges``. The drift monitor bins served values with the same edges and
compares proportions (PSI); readers that do not know the key ignore it.
"""

from __future__ import annotations

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


def column_statistics(series: pd.Series) -> dict[str, Any]:
    """Summary of one column (numeric columns get moments and deciles)."""
    stats: dict[str, Any] = {"count": int(series.notna().sum()), "nulls": int(series.isna().sum())}
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.dropna().astype("float64")
        if len(values):
            stats.update(
                {
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=0)),
                    "min": float(values.min()),
                    "max": float(values.max()),
                    "quantiles": [float(q) for q in np.quantile(values, QUANTILES)],
                    "histogram": histogram(values.to_numpy()),
                }
            )
    return stats


def feature_statistics(frame: pd.DataFrame) -> dict[str, Any]:
    """Statistics of every column of ``frame``."""
    return {
        "rows": len(frame),
        "columns": {str(name): column_statistics(frame[name]) for name in frame.columns},
    }
