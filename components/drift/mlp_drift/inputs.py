"""Read feature columns from a batch file (CSV, Parquet) or from the model server's request log.

Request log format (written by ``mlp-serve --request-log``): JSON Lines, one request per line,
``{"ts": <unix seconds>, "model": <name>, "version": <n>, "features": [name, ...],
"instances": [[f1, f2, ...], ...]}``. With ``features``, rows are matched to the reference by
name; without it, rows are positional in the reference's feature order. A row may also be an
object keyed by feature name. The writer rotates ``<log>`` to ``<log>.1``; both are read,
oldest first.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from mlp_common import dataset
from mlp_common.dataset import read_dataset

from mlp_drift.core import DriftError, FloatArray

Columns = dict[str, FloatArray]


def read_reference(location: str) -> tuple[pd.DataFrame, str | None]:
    """A dataset directory (from ``ingest``/``preprocess``; its target is known) or a table."""
    if Path(location).is_dir():
        frame, info = read_dataset(location)
        return frame, info.target
    return read_table(location), None


def read_table(location: str) -> pd.DataFrame:
    """A CSV or Parquet table from a path or an ``s3://`` URI (the common dataset reader)."""
    if "://" not in location and not Path(location).is_file():
        raise DriftError(f"{location}: no such file")
    suffix = Path(location).suffix.lower()
    if suffix not in {".csv", ".tsv", ".parquet", ".pq"} and not location.endswith(".csv.gz"):
        raise DriftError(f"{location}: unsupported file type '{suffix}' (want .csv or .parquet)")
    return dataset.read_table(location)


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


def table_columns(frame: pd.DataFrame, names: Sequence[str], source: str) -> Columns:
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
        names = record.get("features")
        if isinstance(names, list):
            # Named columns (mlp-serve writes the model's feature order): match by name, so a
            # reference with its columns in another order still lines up.
            for row in instances:
                if isinstance(row, list) and len(row) == len(names):
                    yield where, dict(zip(names, row, strict=True))
                else:
                    yield where, row
        else:
            for row in instances:
                yield where, row


def request_log_columns(path: Path, names: Sequence[str], window: int) -> Columns:
    """The last ``window`` rows of the request log as feature columns (empty if no log yet)."""
    recent: deque[tuple[str, Any]] = deque(maxlen=window)
    for file in _log_files(path):
        recent.extend(_rows(file))
    return matrix_columns(rows_to_matrix(recent, names), names)


def payload_rows(document: Any) -> list[Any]:
    """Feature rows of one inference request body: v1 ``instances`` or a v2 input tensor."""
    if isinstance(document, dict) and isinstance(document.get("instances"), list):
        return list(document["instances"])
    if isinstance(document, dict) and isinstance(document.get("inputs"), list):
        inputs = document["inputs"]
        if len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise DriftError("v2 request: expected exactly one input tensor")
        tensor = inputs[0]
        shape, data = tensor.get("shape"), tensor.get("data")
        if not (isinstance(shape, list) and len(shape) == 2 and isinstance(data, list)):
            raise DriftError("v2 request: input needs a [rows, features] shape and a data list")
        try:
            rows = cast(list[Any], np.asarray(data, dtype=np.float64).reshape(shape).tolist())
        except (TypeError, ValueError) as exc:
            raise DriftError(f"v2 request: data does not fit shape {shape}") from exc
        return rows
    raise DriftError('request body has neither "instances" (v1) nor "inputs" (v2)')


def rows_to_matrix(recent: Iterable[tuple[str, Any]], names: Sequence[str]) -> FloatArray:
    """``(where, row)`` pairs -> a [rows, features] matrix; rows are lists in feature order or
    objects keyed by feature name. Errors name the place (``where``) and the rule."""
    pairs = list(recent)
    matrix = np.empty((len(pairs), len(names)), dtype=np.float64)
    for i, (where, row) in enumerate(pairs):
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
    return matrix


def matrix_columns(matrix: FloatArray, names: Sequence[str]) -> Columns:
    return {name: matrix[:, j] for j, name in enumerate(names)}
