"""Read feature columns from a batch file (CSV, Parquet) or from the model server's request log.

Request log format (written by ``serve --request-log``): JSON Lines, one request per line,
``{"ts": <unix seconds>, "model": <name>, "version": <n>, "instances": [[f1, f2, ...], ...]}``.
Rows are positional in the model's feature order; a row may also be an object keyed by
feature name. The writer rotates ``<log>`` to ``<log>.1``; both are read, oldest first.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlp_drift.core import DriftError, FloatArray

Columns = dict[str, FloatArray]


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; errors name the file."""
    if not path.is_file():
        raise DriftError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
    except (ValueError, ImportError, OSError) as exc:
        raise DriftError(f"{path}: cannot read: {exc}") from exc
    raise DriftError(f"{path}: unsupported file type '{suffix}' (want .csv or .parquet)")


def feature_names(
    frame: pd.DataFrame, features: Sequence[str] | None, target: str | None
) -> list[str]:
    """The requested features, or every column except the target."""
    if features:
        missing = [name for name in features if name not in frame.columns]
        if missing:
            raise DriftError(f"columns not found: {', '.join(missing)}")
        return list(features)
    names = [str(c) for c in frame.columns if c != target]
    if not names:
        raise DriftError("no feature columns left after dropping the target")
    return names


def table_columns(frame: pd.DataFrame, names: Sequence[str], source: Path) -> Columns:
    columns: Columns = {}
    for name in names:
        series = frame[name]
        if not pd.api.types.is_numeric_dtype(series):
            raise DriftError(f"{source}: column '{name}': not numeric (dtype {series.dtype})")
        columns[name] = series.to_numpy(dtype=np.float64)
    return columns


def _log_files(path: Path) -> list[Path]:
    rotated = path.with_name(path.name + ".1")
    return [p for p in (rotated, path) if p.is_file()]


def _rows(path: Path) -> Iterable[tuple[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # a torn last line while the writer appends
                return
            raise DriftError(f"{where}: not JSON: {exc.msg}") from exc
        instances = record.get("instances") if isinstance(record, dict) else None
        if not isinstance(instances, list):
            raise DriftError(f"{where}: missing 'instances' list")
        for row in instances:
            yield where, row


def request_log_columns(path: Path, names: Sequence[str], window: int) -> Columns:
    """The last ``window`` rows of the request log as feature columns (empty if no log yet)."""
    recent: deque[tuple[str, Any]] = deque(maxlen=window)
    for file in _log_files(path):
        recent.extend(_rows(file))
    matrix = np.empty((len(recent), len(names)), dtype=np.float64)
    for i, (where, row) in enumerate(recent):
        if isinstance(row, dict):
            missing = [name for name in names if name not in row]
            if missing:
                raise DriftError(f"{where}: instance lacks features: {', '.join(missing)}")
            row = [row[name] for name in names]
        if not isinstance(row, list) or len(row) != len(names):
            raise DriftError(
                f"{where}: instance has {len(row) if isinstance(row, list) else 'no'} values, "
                f"expected {len(names)} ({', '.join(names[:3])}...)"
            )
        try:
            matrix[i] = row
        except (TypeError, ValueError) as exc:
            raise DriftError(f"{where}: instance values must be numbers") from exc
    return {name: matrix[:, j] for j, name in enumerate(names)}
