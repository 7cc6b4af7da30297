"""The drift reference: per-feature bin edges and training counts.

In the cluster the reference is the training statistics of the model version the registry's
``production`` pointer names (``statistics.json`` in the version, written by ``validate`` and
copied in by ``register``; its ``histogram`` per column). :class:`RegistryReference` re-reads the
pointer and reloads when production moves. For local use ``--reference`` names a dataset or a
table instead; its histograms are computed with the same function
(:func:`mlp_common.statistics.feature_statistics`), so both paths bin identically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlp_common.registry import ModelRegistry, RegistryError
from mlp_common.statistics import feature_statistics
from mlp_common.step import StepError

from mlp_drift.core import DriftError
from mlp_drift.inputs import feature_names, read_reference

STATISTICS_FILE = "statistics.json"
FEATURES_FILE = "features.json"
LOCAL_VERSION = "local"
"""`reference_version` label of a local (``--reference``) reference."""


@dataclass(frozen=True)
class FeatureBins:
    """One feature's reference: right-closed bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def ratios(self) -> tuple[float, ...]:
        total = sum(self.counts)
        return tuple(count / total for count in self.counts)


@dataclass(frozen=True)
class Reference:
    features: Mapping[str, FeatureBins]
    """Feature name -> bins, in the model's feature order (positional request rows use it)."""
    version: str
    """The registry version compared against, or ``local``."""
    source: str
    """Where it came from, for messages."""

    @property
    def names(self) -> list[str]:
        return list(self.features)


def _feature_bins(name: str, column: Any, where: str) -> FeatureBins:
    histogram = column.get("histogram") if isinstance(column, dict) else None
    if not isinstance(histogram, dict):
        raise DriftError(
            f"{where}: column '{name}' has no histogram (statistics written before drift "
            "histograms; register the model again)"
        )
    edges, counts = histogram.get("edges"), histogram.get("counts")
    if not (isinstance(edges, list) and isinstance(counts, list)):
        raise DriftError(f"{where}: column '{name}': histogram needs 'edges' and 'counts' lists")
    if len(counts) != len(edges) + 1:
        raise DriftError(
            f"{where}: column '{name}': {len(counts)} counts for {len(edges)} edges "
            "(want one more count than edges)"
        )
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts) or not any(
        counts
    ):
        raise DriftError(f"{where}: column '{name}': counts must be integers >= 0, not all 0")
    if any(isinstance(e, bool) or not isinstance(e, int | float) for e in edges) or any(
        b <= a for a, b in zip(edges, edges[1:], strict=False)
    ):
        raise DriftError(f"{where}: column '{name}': edges must be increasing numbers")
    return FeatureBins(tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def reference_from_statistics(
    document: Any, where: str, version: str, order: Sequence[str] | None = None
) -> Reference:
    """A reference from a ``statistics.json`` document: every numeric column (those with a
    histogram or quantiles), in ``order`` when given (the model's features), else file order."""
    columns = document.get("columns") if isinstance(document, dict) else None
    if not isinstance(columns, dict) or not columns:
        raise DriftError(f"{where}: no 'columns' object; not a statistics.json")
    names = [
        name
        for name, column in columns.items()
        if isinstance(column, dict) and ("histogram" in column or "quantiles" in column)
    ]
    if order is not None:
        missing = [name for name in order if name not in columns]
        if missing:
            raise DriftError(f"{where}: no statistics for features {', '.join(missing)}")
        names = list(order)
    if not names:
        raise DriftError(f"{where}: no numeric columns")
    features = {name: _feature_bins(name, columns[name], where) for name in names}
    return Reference(features=features, version=version, source=where)


def reference_from_table(
    location: str, features: Sequence[str] | None, target: str | None
) -> Reference:
    """A local reference (``--reference``): a dataset directory or a CSV/Parquet table."""
    frame, dataset_target = read_reference(location)
    names = feature_names(frame, features, target or dataset_target or "target")
    for name in names:
        if frame[name].isna().any() or frame[name].dtype.kind not in "biuf":
            raise DriftError(f"{location}: column '{name}' must be numeric without nulls")
    document = feature_statistics(frame[names])
    return reference_from_statistics(document, location, LOCAL_VERSION, names)


class RegistryReference:
    """The training statistics of the model version ``production`` names, read lazily.

    Only the pointer and two small files of the version are read (no model download)."""

    def __init__(self, registry_uri: str, model: str) -> None:
        self.registry = ModelRegistry(registry_uri)
        self.model = model
        self.uri = str(self.registry.store.uri)

    def production_version(self) -> int:
        """The production version number; a clear error when there is none."""
        try:
            version = self.registry.pointer(self.model, "production")
        except StepError as exc:
            raise DriftError(f"registry {self.uri}: {exc}") from exc
        except OSError as exc:
            raise DriftError(f"registry {self.uri}: cannot read: {exc}") from exc
        if version is None:
            raise DriftError(
                f"registry {self.uri}: model {self.model!r} has no production version yet "
                "(promote one; the drift reference is its training statistics)"
            )
        return version

    def load(self, version: int) -> Reference:
        """The reference of ``version`` (its ``statistics.json``, in ``features.json`` order)."""
        where = f"{self.uri}/models/{self.model}/versions/{version}/{STATISTICS_FILE}"
        try:
            text = self.registry.read_version_file(self.model, version, STATISTICS_FILE)
            if text is None:
                raise DriftError(
                    f"{where}: missing; version {version} was registered without training "
                    "statistics (mlp-register --statistics)"
                )
            document = json.loads(text)
            order = None
            described_text = self.registry.read_version_file(self.model, version, FEATURES_FILE)
            if described_text is not None:
                described = json.loads(described_text)
                listed = described.get("features") if isinstance(described, dict) else None
                if isinstance(listed, list) and all(isinstance(n, str) for n in listed):
                    order = listed
        except RegistryError as exc:
            raise DriftError(f"{self.uri}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise DriftError(f"{where}: not JSON: {exc.msg}") from exc
        except OSError as exc:
            raise DriftError(f"{where}: cannot read: {exc}") from exc
        return reference_from_statistics(document, where, str(version), order)
