"""A synthetic dataset of the pipeline's schema at SIZE times the default (``make data``).

The default dataset is scikit-learn's digits (1,797 rows; the columns and rules of the embedded
schema ``mlp_validate/schemas/digits.yaml``: 64 pixels 0-16 and a target 0-9). Copy 0 of the
output is the default data itself, so ``SIZE=1`` *is* the default dataset; copy ``k >= 1`` is
every default row with each pixel moved by -1, 0 or +1 (clipped to 0-16) from a generator seeded
with ``(seed, k)``, so the classes stay learnable, the rows are new and every byte depends only
on ``size`` and ``seed``. The CSV is written one copy at a time, in memory bounded by a copy.

``python -m bench.synthetic_data SIZE OUT.csv [--seed N]``
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 1797
"""Rows of the default dataset (one copy)."""


def default_frame() -> pd.DataFrame:
    """The default dataset exactly as ``ingest`` reads it (``sklearn:digits``)."""
    from mlp_ingest.core import load_sklearn

    return load_sklearn("digits")[0]


def copies(size: int, seed: int = 0) -> Iterator[pd.DataFrame]:
    """The ``size`` copies of the default data that make the synthetic dataset, in order."""
    base = default_frame()
    features = [c for c in base.columns if c != "target"]
    pixels = base[features].to_numpy(dtype="float64")
    for copy in range(size):
        if copy == 0:
            yield base
            continue
        rng = np.random.default_rng([seed, copy])
        moved = np.clip(pixels + rng.integers(-1, 2, size=pixels.shape), 0, 16)
        yield pd.DataFrame(moved, columns=features).assign(target=base["target"].to_numpy())


def write(size: int, path: Path, seed: int = 0) -> Path:
    """Write the dataset of ``size`` copies as CSV at ``path`` (atomically); return ``path``."""
    if size < 1:
        raise ValueError(f"SIZE {size}: must be a whole number of at least 1")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        for index, frame in enumerate(copies(size, seed)):
            frame.to_csv(handle, index=False, header=index == 0)
    os.replace(tmp, path)
    return path


def decoded_bytes(size: int) -> int:
    """Bytes the dataset takes as a float64/int64 table in memory (65 columns a row)."""
    return size * ROWS * 65 * 8


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic_data", description=__doc__)
    parser.add_argument("size", type=int, help="copies of the default data (1, 10, 100, ...)")
    parser.add_argument("output", type=Path, help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error(f"SIZE {args.size}: must be a whole number of at least 1")
    path = write(args.size, args.output, args.seed)
    rows = args.size * ROWS
    print(f"{path}: {rows:,} rows, {decoded_bytes(args.size) / 2**20:,.0f} MiB in memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
