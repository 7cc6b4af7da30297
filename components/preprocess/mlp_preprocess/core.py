"""Preprocess: a train/validation/test split by a stable hash of each row, and the feature
description.

The output directory holds ``train.parquet``, ``val.parquet`` and ``test.parquet`` (feature columns
in a fixed order, then ``label``: the class index) and ``features.json``::

    {"features": [...], "dtypes": {feature: dtype}, "target": "target", "classes": ["0", "1"],
     "mean": [...], "variance": [...],           # from the training split only
     "splits": {"train": n, "val": n, "test": n}, "seed": 42,
     "split": {"rule", "key", "salt", "test_size", "val_size"}, "test_hash": "sha256:...",
     "dataset": {...}}

**The split never leaks as data grows.** Each row goes to a split by its own key alone: the
declared id column (``--id-column``), else the row's content (features and target). The key's
sha256 (salted with :data:`SALT`) read as a number ``u`` in [0, 1) puts the row in ``test`` when
``u < test_size``, in ``val`` when ``u < test_size + val_size``, else in ``train``. A row keeps its
split when rows are added, removed or reordered, and duplicate rows share one split, so a row a
production model trained on can never turn up in a later test set. The seed does not move rows.
``test_hash`` (:func:`mlp_common.dataset.content_hash`, independent of row order) names the test
set; the registry records it with the split rule.

Scaling is not applied to the data: ``train`` puts a Normalization layer with these statistics in
the model itself, so serving takes raw features and cannot skew from training.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
from mlp_common.dataset import content_hash
from mlp_common.step import DataError, StepError

LABEL = "label"
SPLITS = ("train", "val", "test")
SALT = "mlp-split-v1"
"""Salt of the row hash. Changing it reshuffles every row: never change it for a live model."""


def row_keys(frame: pd.DataFrame, target: str, id_column: str | None) -> list[str]:
    """The key of each row: its id (as text), else its content (features as float64 at full
    precision, then the target as text), so an int column that gains a null keeps its keys."""
    if id_column is not None:
        return [str(value) for value in frame[id_column].tolist()]
    features = [c for c in frame.columns if c != target]
    texts = float_texts(frame[features].to_numpy("float64"))
    labels = frame[target].astype(str).tolist()
    return [",".join(row) + "|" + label for row, label in zip(texts.tolist(), labels, strict=True)]


def float_texts(values: np.ndarray) -> np.ndarray:
    """``format(v, ".17g")`` of every value: whole numbers below 1e17 (the common case: counts,
    pixels, codes) through numpy's integer formatting, the rest one by one."""
    whole = np.isfinite(values) & (np.abs(values) < 1e17) & (values == np.round(values))
    whole &= ~((values == 0) & np.signbit(values))  # -0.0 formats as "-0"
    texts = np.where(whole, values, 0).astype(np.int64).astype(str).astype(object)
    rest = ~whole
    if rest.any():
        texts[rest] = [format(v, ".17g") for v in values[rest].tolist()]
    return texts


def assign_splits(keys: list[str], test_size: float, val_size: float) -> np.ndarray:
    """The split of each key: ``"test"``, ``"val"`` or ``"train"`` (see the module docstring)."""
    salt = SALT.encode()
    u = np.array(
        [int.from_bytes(hashlib.sha256(salt + k.encode()).digest()[:8], "big") for k in keys],
        dtype="float64",
    ) / float(1 << 64)
    return np.where(u < test_size, "test", np.where(u < test_size + val_size, "val", "train"))


KEY_ROWS = 4096
"""Rows whose keys are built at once (their texts are Python strings: ~64 per row)."""


def splits_of(
    frame: pd.DataFrame, target: str, id_column: str | None, test_size: float, val_size: float
) -> np.ndarray:
    """The split of every row of ``frame``, keys built :data:`KEY_ROWS` rows at a time."""
    parts = [
        assign_splits(
            row_keys(frame.iloc[start : start + KEY_ROWS], target, id_column), test_size, val_size
        )
        for start in range(0, len(frame), KEY_ROWS)
    ]
    return np.concatenate(parts) if parts else np.array([], dtype="<U5")


def split(
    frame: pd.DataFrame,
    target: str,
    *,
    test_size: float,
    val_size: float,
    seed: int,
    id_column: str | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Split ``frame`` into train/val/test tables by row key and describe the features, in
    memory (the definition; the step streams: :mod:`mlp_preprocess.streaming`)."""
    check_sizes(test_size, val_size)
    if target not in frame.columns:
        raise DataError(f"target column {target!r}: missing")
    if id_column is not None:
        if id_column not in frame.columns or id_column == target:
            raise DataError(f"id column {id_column!r}: not a column of the data besides the target")
        if frame[id_column].isna().any():
            raise DataError(f"id column {id_column!r}: {int(frame[id_column].isna().sum())} nulls")
    features = [str(c) for c in frame.columns if c not in (target, id_column)]
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
    assigned = splits_of(frame, target, id_column, test_size, val_size)
    data = frame[features].astype("float64")
    labels = frame[target].map(index).astype("int64")
    parts = {name: (data[assigned == name], labels[assigned == name]) for name in SPLITS}
    missing = [str(c) for c, i in index.items() if not (parts["train"][1] == i).any()]
    if missing:
        raise DataError(f"target column {target!r}: classes {missing} have no training rows")
    means = parts["train"][0].mean()
    tables = {
        name: x.fillna(means).assign(**{LABEL: y}).reset_index(drop=True)
        for name, (x, y) in parts.items()
    }
    train_x = tables["train"][features]
    description = describe_split(
        features=features,
        dtypes={name: str(frame[name].dtype) for name in features},
        target=target,
        classes=classes,
        mean=[float(v) for v in train_x.mean()],
        variance=[float(v) for v in np.var(train_x.to_numpy(), axis=0)],
        splits={name: len(table) for name, table in tables.items()},
        seed=seed,
        id_column=id_column,
        test_size=test_size,
        val_size=val_size,
        test_hash=content_hash(tables["test"]),
    )
    return tables, description


def check_sizes(test_size: float, val_size: float) -> None:
    """Each share in (0, 1), their sum below 1."""
    if not 0 < test_size < 1 or not 0 < val_size < 1 or test_size + val_size >= 1:
        raise StepError(
            f"--test-size {test_size} and --val-size {val_size}: each must be in (0, 1) "
            "and their sum below 1"
        )


def describe_split(
    *,
    features: list[str],
    dtypes: dict[str, str],
    target: str,
    classes: list[Any],
    mean: list[float],
    variance: list[float],
    splits: dict[str, int],
    seed: int,
    id_column: str | None,
    test_size: float,
    val_size: float,
    test_hash: str,
) -> dict[str, Any]:
    """``features.json`` (see the module docstring)."""
    return {
        "features": features,
        "dtypes": dtypes,
        "target": target,
        "classes": [str(c) for c in classes],
        "mean": mean,
        "variance": variance,
        "splits": splits,
        "seed": seed,
        "split": {
            "rule": "sha256(salt + row key) as u in [0, 1): test if u < test_size, "
            "val if u < test_size + val_size, else train",
            "key": f"id column {id_column!r}" if id_column else "row content (features, target)",
            "salt": SALT,
            "test_size": test_size,
            "val_size": val_size,
        },
        "test_hash": test_hash,
    }
