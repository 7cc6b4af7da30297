"""Datasets for the drift tests: the breast-cancer data that scikit-learn ships (offline),
split into a training reference and a held-out part, plus a shifted copy of the held-out part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

SHIFTED_FEATURES = ("mean radius", "worst texture")


def _split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_breast_cancer(as_frame=True).frame
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    half = len(shuffled) // 2
    return shuffled.iloc[:half].reset_index(drop=True), shuffled.iloc[half:].reset_index(drop=True)


def shift(frame: pd.DataFrame) -> pd.DataFrame:
    """Move two features by 1.5 reference standard deviations: a drift a monitor must catch."""
    shifted = frame.copy()
    for name in SHIFTED_FEATURES:
        shifted[name] = shifted[name] + 1.5 * frame[name].std()
    return shifted


@pytest.fixture(scope="session")
def cancer_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _split()


@pytest.fixture
def cancer_files(
    tmp_path: Path, cancer_split: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, Path]:
    reference, holdout = cancer_split
    paths = {
        "reference": tmp_path / "reference.csv",
        "unshifted": tmp_path / "unshifted.csv",
        "shifted": tmp_path / "shifted.csv",
    }
    reference.to_csv(paths["reference"], index=False)
    holdout.to_csv(paths["unshifted"], index=False)
    shift(holdout).to_csv(paths["shifted"], index=False)
    return paths


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
