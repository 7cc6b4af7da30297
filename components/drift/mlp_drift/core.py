"""Pure drift statistics: PSI and two-sample KS per feature, and the alert decision.

Nothing here reads files, the clock or the environment: callers pass arrays in and get a
frozen report out, so the CLI, the long-running exporter and the tests share one code path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from mlp_common.statistics import bin_counts, bin_edges
from mlp_common.step import DataError
from scipy import stats

FloatArray = npt.NDArray[np.float64]

#: Proportions are floored at this value before the PSI logarithm, so an empty bin on
#: either side gives a large but finite contribution instead of infinity.
PSI_EPSILON = 1e-4


class DriftError(DataError):
    """Bad input to the drift computation (names the feature and the rule)."""


@dataclass(frozen=True)
class Thresholds:
    """When a feature counts as drifted."""

    psi: float = 0.2
    """PSI at or above this flags the feature (0.1 = moderate, 0.2 = significant shift)."""
    ks_alpha: float = 0.05
    """Family-wise KS significance: a feature is flagged when p < ks_alpha / n_features."""
    bins: int = 10
    """Quantile bins of the reference used for PSI."""
    min_samples: int = 100
    """Fewer current rows than this and no decision is made (the report says why). PSI has a
    small-sample bias of about (bins - 1) * (1/n_reference + 1/n_current), so keep this high."""

    def __post_init__(self) -> None:
        if not self.psi > 0:
            raise DriftError(f"psi threshold must be > 0, got {self.psi}")
        if not 0 < self.ks_alpha < 1:
            raise DriftError(f"ks alpha must be in (0, 1), got {self.ks_alpha}")
        if self.bins < 2:
            raise DriftError(f"bins must be >= 2, got {self.bins}")
        if self.min_samples < 1:
            raise DriftError(f"min samples must be >= 1, got {self.min_samples}")


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    drifted: bool
    reference_mean: float
    current_mean: float


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    drift_detected: bool
    reference_samples: int
    current_samples: int
    sufficient: bool
    """False when the current window had fewer than ``min_samples`` rows; nothing is flagged."""
    thresholds: Thresholds

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.feature for f in self.features if f.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift_detected": self.drift_detected,
            "drifted_features": list(self.drifted_features),
            "sufficient": self.sufficient,
            "reference_samples": self.reference_samples,
            "current_samples": self.current_samples,
            "thresholds": asdict(self.thresholds),
            "features": [asdict(f) for f in self.features],
        }


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges at the reference quantiles, deduplicated for discrete features (the
    edges ``statistics.json`` histograms record: :func:`mlp_common.statistics.bin_edges`)."""
    return bin_edges(reference, bins)


def psi_from_counts(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """PSI = sum((c - r) * ln(c / r)) over bins, from counts per bin (same bins on both sides).

    Proportions are floored at :data:`PSI_EPSILON`. The recording rules of the drift
    PrometheusRule compute exactly this from the exported counters (the alert tests check that
    both agree)."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise DriftError(f"PSI needs counts for the same bins, got {ref.shape} and {cur.shape}")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise DriftError("PSI needs at least one count on each side")
    ref_p = np.maximum(ref / ref.sum(), PSI_EPSILON)
    cur_p = np.maximum(cur / cur.sum(), PSI_EPSILON)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def population_stability_index(reference: FloatArray, current: FloatArray, bins: int) -> float:
    """PSI over reference-quantile bins with open outer bins (right-closed, see
    :func:`mlp_common.statistics.bin_counts`)."""
    edges = quantile_edges(reference, bins)
    return psi_from_counts(bin_counts(edges, reference), bin_counts(edges, current))


def _column(
    name: str, values: Sequence[float] | FloatArray, side: str, allow_empty: bool = False
) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise DriftError(f"feature '{name}': {side} values must be one-dimensional")
    if array.size == 0 and not allow_empty:
        raise DriftError(f"feature '{name}': {side} has no values")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise DriftError(f"feature '{name}': {side} has {bad} non-finite values (NaN/inf)")
    return array


def compare(
    reference: Mapping[str, Sequence[float] | FloatArray],
    current: Mapping[str, Sequence[float] | FloatArray],
    thresholds: Thresholds | None = None,
) -> DriftReport:
    """Compare every reference feature with the same feature in ``current``."""
    thresholds = thresholds or Thresholds()
    if not reference:
        raise DriftError("reference has no features")
    missing = [name for name in reference if name not in current]
    if missing:
        raise DriftError(f"current data lacks reference features: {', '.join(missing)}")

    ref_cols = {name: _column(name, values, "reference") for name, values in reference.items()}
    cur_cols = {
        name: _column(name, current[name], "current", allow_empty=True) for name in ref_cols
    }
    sizes = {column.size for column in cur_cols.values()}
    if len(sizes) != 1:
        raise DriftError(f"current feature columns differ in length: {sorted(sizes)}")
    current_samples = sizes.pop()
    reference_samples = len(next(iter(ref_cols.values())))
    if current_samples < thresholds.min_samples:
        return DriftReport(
            features=(),
            drift_detected=False,
            reference_samples=reference_samples,
            current_samples=current_samples,
            sufficient=False,
            thresholds=thresholds,
        )

    per_feature_alpha = thresholds.ks_alpha / len(ref_cols)
    results = []
    for name, ref in ref_cols.items():
        cur = cur_cols[name]
        psi = population_stability_index(ref, cur, thresholds.bins)
        ks = stats.ks_2samp(ref, cur)
        ks_statistic, ks_pvalue = float(ks.statistic), float(ks.pvalue)
        if math.isnan(ks_pvalue):  # both samples constant and equal
            ks_pvalue = 1.0
        drifted = psi >= thresholds.psi or ks_pvalue < per_feature_alpha
        results.append(
            FeatureDrift(
                feature=name,
                psi=psi,
                ks_statistic=ks_statistic,
                ks_pvalue=ks_pvalue,
                drifted=drifted,
                reference_mean=float(ref.mean()),
                current_mean=float(cur.mean()),
            )
        )
    return DriftReport(
        features=tuple(results),
        drift_detected=any(f.drifted for f in results),
        reference_samples=reference_samples,
        current_samples=current_samples,
        sufficient=True,
        thresholds=thresholds,
    )
