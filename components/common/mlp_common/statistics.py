"""Per-feature summary statistics: the reference for train/serve skew and drift checks.

``statistics.json`` (written by ``validate``, copied into each registered model version) is::

    {"rows": 178, "columns": {"alcohol": {"count", "nulls", "mean", "std", "min", "max",
                                          "quantiles": [q0, q10, ..., q100]}, ...}}

Non-numeric columns carry only ``count`` and ``nulls``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

QUANTILES = tuple(i / 10 for i in range(11))


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
                }
            )
    return stats


def feature_statistics(frame: pd.DataFrame) -> dict[str, Any]:
    """Statistics of every column of ``frame``."""
    return {
        "rows": len(frame),
        "columns": {str(name): column_statistics(frame[name]) for name in frame.columns},
    }
