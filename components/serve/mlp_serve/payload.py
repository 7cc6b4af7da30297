"""Pure request parsing and response shaping for the v1 and v2 protocols (no KServe, no TF).

v1 request:  ``{"instances": [[f1, ..., fn], ...]}`` or rows as objects keyed by feature name.
v1 response: ``{"predictions": [label, ...], "probabilities": [[p1, ..., pk], ...],
               "classes": [...], "model_version": "<n>"}``
v2 request:  one input tensor, shape ``[rows, n]``, a numeric datatype (FP32, FP64, INT*).
v2 response: outputs ``probabilities`` (FP32 ``[rows, k]``) and ``label`` (BYTES ``[rows]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

NUMERIC_DATATYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16"}

_NUMBERS = {int, float}
"""JSON numbers as the parser returns them; `true`, `"1"` and `null` are not features."""


class BadRequest(ValueError):
    """The client sent something we cannot predict on; the message says what and where."""


class TensorInput(Protocol):
    """What the v2 parser needs from a KServe ``InferInput``."""

    @property
    def name(self) -> str: ...

    @property
    def datatype(self) -> str: ...

    @property
    def shape(self) -> list[int]: ...

    def as_numpy(self) -> np.ndarray: ...


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | dict):
        return "an array" if isinstance(value, list) else "an object"
    return type(value).__name__


def _check_numbers(values: Sequence[Any], where: str) -> None:
    """Refuse the first value that is not a JSON number, naming its place."""
    for j, value in enumerate(values):
        if type(value) not in _NUMBERS:
            raise BadRequest(f"{where}[{j}]: {_json_type(value)} is not a number")


def _finite_matrix(rows: Any, n_features: int, where: str) -> Matrix:
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{where}: values must be numbers ({exc})") from exc
    if matrix.size == 0 and matrix.shape[:1] == (0,):
        raise BadRequest(f"{where}: no rows")
    if matrix.ndim != 2 or matrix.shape[1] != n_features:
        raise BadRequest(f"{where}: expected shape [rows, {n_features}], got {list(matrix.shape)}")
    if not np.isfinite(matrix).all():
        raise BadRequest(f"{where}: values must be finite numbers (no NaN/inf)")
    return matrix


def parse_v1(payload: Any, features: Sequence[str]) -> Matrix:
    """``{"instances": [...]}`` -> float32 matrix in feature order."""
    if not isinstance(payload, dict):
        raise BadRequest('body must be a JSON object like {"instances": [[...], ...]}')
    instances = payload.get("instances")
    if not isinstance(instances, list):
        raise BadRequest('"instances" must be a list of rows')
    if instances and isinstance(instances[0], list):
        # Fast path: one set of value types, then one C-level conversion. Anything odd (ragged
        # rows, strings, booleans, a wrong width) falls through to the row-by-row checks below,
        # which name the offending row and value.
        try:
            numbers = {type(value) for row in instances for value in row} <= _NUMBERS
        except TypeError:  # a row that is a number
            numbers = False
        try:
            matrix = np.asarray(instances, dtype=np.float32) if numbers else None
        except (TypeError, ValueError):
            matrix = None
        if matrix is not None:
            if matrix.ndim == 2 and matrix.shape[1] == len(features):
                if not np.isfinite(matrix).all():
                    raise BadRequest("instances: values must be finite numbers (no NaN/inf)")
                return matrix
    if instances and isinstance(instances[0], dict):
        rows = []
        for i, row in enumerate(instances):
            if not isinstance(row, dict):
                raise BadRequest(f"instances[{i}]: mix of objects and lists")
            missing = [name for name in features if name not in row]
            if missing:
                raise BadRequest(f"instances[{i}]: missing features: {', '.join(missing[:5])}")
            values = [row[name] for name in features]
            for name, value in zip(features, values, strict=True):
                if type(value) not in _NUMBERS:
                    raise BadRequest(f"instances[{i}].{name}: {_json_type(value)} is not a number")
            rows.append(values)
        instances = rows
    else:
        for i, row in enumerate(instances):
            if not isinstance(row, list):
                raise BadRequest(
                    f"instances[{i}]: each row must be a list of {len(features)} numbers"
                )
            if len(row) != len(features):
                raise BadRequest(f"instances[{i}]: {len(row)} values, expected {len(features)}")
            _check_numbers(row, f"instances[{i}]")
    return _finite_matrix(instances, len(features), "instances")


def parse_v2(inputs: Sequence[TensorInput], n_features: int) -> Matrix:
    """The single numeric input tensor of a v2 request -> float32 matrix."""
    if len(inputs) != 1:
        raise BadRequest(f"expected exactly 1 input tensor, got {len(inputs)}")
    tensor = inputs[0]
    where = f"input '{tensor.name}'"
    if tensor.datatype not in NUMERIC_DATATYPES:
        raise BadRequest(f"{where}: datatype {tensor.datatype} is not numeric")
    shape = tensor.shape
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    data = getattr(tensor, "data", None)  # None when the data came as raw binary
    if isinstance(data, list):
        _check_tensor_data(data, where)
    try:
        array = tensor.as_numpy()
    except Exception as exc:  # KServe raises ValueError/InvalidInput for data vs shape
        raise BadRequest(f"{where}: data does not match shape {tensor.shape}: {exc}") from exc
    return _finite_matrix(array, n_features, where)


def _check_tensor_data(data: list[Any], where: str) -> None:
    """The JSON data of a numeric tensor: numbers, flat or nested in arrays (the protocol allows
    both); no strings, booleans or nulls for NumPy to coerce quietly."""
    stack = [data]
    while stack:
        values = stack.pop()
        for value in values:
            if isinstance(value, list):
                stack.append(value)
            elif type(value) not in _NUMBERS:
                raise BadRequest(f"{where}: data holds {_json_type(value)}, not a number")


def labels(probabilities: npt.NDArray[np.float32], classes: Sequence[str]) -> list[str]:
    return [classes[i] for i in np.argmax(probabilities, axis=1)]


def v1_response(
    probabilities: npt.NDArray[np.float32], classes: Sequence[str], version: int
) -> dict[str, Any]:
    return {
        "predictions": labels(probabilities, classes),
        "probabilities": probabilities.tolist(),
        "classes": list(classes),
        "model_version": str(version),
    }
