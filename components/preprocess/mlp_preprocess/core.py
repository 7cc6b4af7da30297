"""Preprocess: a stratified train/validation/test split and the feature description.

The output directory holds ``train.parquet``, ``val.parquet`` and ``test.parquet`` (feature columns
in a fixed order, then ``label``: the class index) and ``features.json``::

    {"features": [...], "target": "target", "classes": ["0", "1", "2"],
     "mean": [...], "variance": [...],           # from the training split only
     "splits": {"train": n, "val": n, "test": n}, "seed": 42, "dataset": {...}}

Scaling is not applied to the data: ``train`` puts a Normalization layer with these statistics in
the model itself, so serving takes raw features and cannot skew from training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlp_common.step import DataError, StepError
from sklearn.model_selection import train_test_split

LABEL = "label"
SPLITS = ("train", "val", "test")


def split(
    frame: pd.DataFrame,
    target: str,
    *,
    test_size: float,
    val_size: float,
    seed: int,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Split ``frame`` into stratified train/val/test tables and describe the features."""
    if not 0 < test_size < 1 or not 0 < val_size < 1 or test_size + val_size >= 1:
        raise StepError(
            f"--test-size {test_size} and --val-size {val_size}: each must be in (0, 1) "
            "and their sum below 1"
        )
    if target not in frame.columns:
        raise DataError(f"target column {target!r}: missing")
    features = [str(c) for c in frame.columns if c != target]
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(f"columns {non_numeric}: not numeric, rule requires numeric features")
    if frame[target].isna().any():
        raise DataError(f"target column {target!r}: {int(frame[target].isna().sum())} nulls")
    classes = sorted(frame[target].unique().tolist())
    index = {value: position for position, value in enumerate(classes)}
    counts = frame[target].value_counts()
    if (counts < 3).any():
        rare = sorted(str(c) for c in counts[counts < 3].index)
        raise DataError(f"target column {target!r}: classes {rare} have fewer than 3 rows")
    data = frame[features].astype("float64")
    labels = frame[target].map(index).astype("int64")
    rest_x, test_x, rest_y, test_y = train_test_split(
        data, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    val_share = val_size / (1 - test_size)
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=val_share, random_state=seed, stratify=rest_y
    )
    means = train_x.mean()
    train_x, val_x, test_x = (part.fillna(means) for part in (train_x, val_x, test_x))
    tables = {
        name: x.assign(**{LABEL: y}).reset_index(drop=True)
        for name, x, y in (
            ("train", train_x, train_y),
            ("val", val_x, val_y),
            ("test", test_x, test_y),
        )
    }
    description = {
        "features": features,
        "target": target,
        "classes": [str(c) for c in classes],
        "mean": [float(v) for v in train_x.mean()],
        "variance": [float(v) for v in np.var(train_x.to_numpy(), axis=0)],
        "splits": {name: len(table) for name, table in tables.items()},
        "seed": seed,
    }
    return tables, description
