"""statistics.json histograms (written by validate, copied by register) as drift references."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from mlp_common.statistics import feature_statistics
from mlp_drift.core import DriftError
from mlp_drift.reference import reference_from_statistics


def test_histograms_bin_continuous_and_discrete_columns() -> None:
    frame = pd.DataFrame(
        {"x": [float(i) for i in range(100)], "pixel": [0.0] * 95 + [16.0] * 5, "name": ["a"] * 100}
    )
    columns = feature_statistics(frame)["columns"]
    x, pixel = columns["x"]["histogram"], columns["pixel"]["histogram"]
    assert len(x["edges"]) == 9 and x["counts"] == [10] * 10
    assert pixel == {"edges": [0.0], "counts": [95, 5]}  # deciles collapse to one edge
    assert "histogram" not in columns["name"]
    assert set(columns["x"]) >= {"quantiles", "mean", "std"}  # what older readers use is kept

    reference = reference_from_statistics(feature_statistics(frame), "s.json", "4", ["pixel", "x"])
    assert reference.names == ["pixel", "x"]
    assert reference.features["pixel"].ratios == (0.95, 0.05)
    assert reference.version == "4"


def _broken(**histogram: Any) -> dict[str, Any]:
    return {"columns": {"f": {"count": 3, "quantiles": [0, 1], "histogram": histogram}}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "s.json: no 'columns' object; not a statistics.json"),
        ({"columns": {"f": {"count": 3, "quantiles": [0, 1]}}}, "column 'f' has no histogram"),
        (_broken(edges=[1.0]), "column 'f': histogram needs 'edges' and 'counts' lists"),
        (_broken(edges=[1.0], counts=[1]), "1 counts for 1 edges (want one more count"),
        (_broken(edges=[2.0, 1.0], counts=[1, 1, 1]), "edges must be increasing numbers"),
        (_broken(edges=[1.0], counts=[0, 0]), "counts must be integers >= 0, not all 0"),
        (_broken(edges=[1.0], counts=[1, -1]), "counts must be integers >= 0"),
    ],
    ids=[
        "not-statistics",
        "no-histogram",
        "no-counts",
        "count-length",
        "edge-order",
        "all-zero",
        "negative",
    ],
)
def test_bad_statistics_are_clear_errors(document: Any, message: str) -> None:
    with pytest.raises(DriftError, match="^s.json: ") as raised:
        reference_from_statistics(json.loads(json.dumps(document)), "s.json", "1")
    assert message in str(raised.value)


def test_features_missing_from_the_statistics_are_named() -> None:
    document = feature_statistics(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(DriftError, match="s.json: no statistics for features b, c"):
        reference_from_statistics(document, "s.json", "1", ["a", "b", "c"])
