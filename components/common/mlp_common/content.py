"""The content hash of a table, computed incrementally over batches.

``sha256:<hex>`` where ``<hex>`` is the sha256 of::

    b"mlp-table-v2\\n" + header + b"\\n" + rows (8 bytes, little endian) + the row sum

``header`` is ``name:dtype`` of every column, comma-separated (pandas dtype names, so ``int64``
and ``float64`` columns of equal values hash differently). Each row is encoded canonically (per
column a null byte, then the value: integers and booleans as int64, floats as float64 with every
NaN/null alike, anything else as the sha256 of its text) and hashed with sha256; the *row sum*
adds the four 64-bit little-endian lanes of every row digest, each modulo 2**64. Addition is
commutative, so the hash depends on the multiset of rows only: not on their order, on how they
are batched or on how many Parquet files hold them, and one pass over the batches computes it in
memory bounded by the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

DOMAIN = b"mlp-table-v2\n"
LANES = 4


def header(dtypes: Iterable[tuple[str, str]]) -> str:
    """``name:dtype,...``: the column part of the hash."""
    return ",".join(f"{name}:{dtype}" for name, dtype in dtypes)


def _column_bytes(series: pd.Series) -> npt.NDArray[np.uint8]:
    """The canonical encoding of one column: (rows, 1 + width) bytes."""
    rows = len(series)
    null = series.isna().to_numpy(dtype=bool)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        raw = (series.fillna(0) if null.any() else series).to_numpy().astype("int64")
        body = np.ascontiguousarray(raw, dtype="<i8").view(np.uint8).reshape(rows, 8)
    elif pd.api.types.is_float_dtype(dtype):
        raw = series.to_numpy(dtype="float64", na_value=0.0).copy()
        raw[null] = 0.0
        body = np.ascontiguousarray(raw, dtype="<f8").view(np.uint8).reshape(rows, 8)
    else:
        texts = series.astype(str).tolist()
        digests = b"".join(
            bytes(32) if missing else hashlib.sha256(text.encode("utf-8")).digest()
            for text, missing in zip(texts, null.tolist(), strict=True)
        )
        body = np.frombuffer(digests, dtype=np.uint8).reshape(rows, 32)
    return np.hstack([null.astype(np.uint8).reshape(rows, 1), body])


def row_digests(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    """The sha256 of each row's canonical encoding, as (rows, 4) little-endian uint64 lanes."""
    if frame.empty:
        return np.zeros((0, LANES), dtype=np.uint64)
    block = np.ascontiguousarray(np.hstack([_column_bytes(frame[c]) for c in frame.columns]))
    width = block.shape[1]
    view = memoryview(block.tobytes())
    digests = b"".join(
        hashlib.sha256(view[start : start + width]).digest() for start in range(0, len(view), width)
    )
    return np.frombuffer(digests, dtype="<u8").reshape(-1, LANES)


class ContentHasher:
    """Feed batches (pandas frames with the same columns) with :meth:`update`; read
    :meth:`hexdigest`. The result does not depend on row order or batch boundaries."""

    def __init__(self, dtypes: Iterable[tuple[str, str]]) -> None:
        self.header = header(dtypes)
        self.rows = 0
        self.total = np.zeros(LANES, dtype=np.uint64)

    def update(self, frame: pd.DataFrame) -> None:
        digests = row_digests(frame)
        with np.errstate(over="ignore"):
            self.total = self.total + digests.sum(axis=0, dtype=np.uint64)
        self.rows += len(frame)

    def hexdigest(self) -> str:
        digest = hashlib.sha256(DOMAIN + self.header.encode("utf-8") + b"\n")
        digest.update(self.rows.to_bytes(8, "little"))
        digest.update(self.total.astype("<u8").tobytes())
        return digest.hexdigest()


def frame_dtypes(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """``(name, dtype)`` of every column of ``frame``, the form :class:`ContentHasher` takes."""
    return [(str(name), str(frame[name].dtype)) for name in frame.columns]


def content_hash_of(batches: Iterable[pd.DataFrame], dtypes: Iterable[tuple[str, str]]) -> str:
    """``sha256:<hex>`` of the rows of all ``batches`` (see the module docstring)."""
    hasher = ContentHasher(dtypes)
    for batch in batches:
        hasher.update(batch)
    return f"sha256:{hasher.hexdigest()}"
