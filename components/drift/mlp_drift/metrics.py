"""Prometheus metrics on private registries (no process-global state): gauges for a one-shot
drift report (``check --metrics-file``) and the long-running monitor's observation counters."""

from __future__ import annotations

import threading

import numpy as np
from mlp_common.statistics import bin_counts
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from mlp_drift.core import DriftReport, FloatArray
from mlp_drift.reference import Reference


class DriftMetrics:
    """The drift exporter's metric families; ``update`` mirrors one report into them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.psi = Gauge(
            "mlp_feature_drift_psi",
            "Population stability index per feature",
            ["feature"],
            registry=r,
        )
        self.ks_statistic = Gauge(
            "mlp_feature_drift_ks_statistic",
            "Two-sample KS statistic per feature",
            ["feature"],
            registry=r,
        )
        self.ks_pvalue = Gauge(
            "mlp_feature_drift_ks_pvalue",
            "Two-sample KS p-value per feature",
            ["feature"],
            registry=r,
        )
        self.feature_drifted = Gauge(
            "mlp_feature_drift_detected",
            "1 when this feature crossed a threshold",
            ["feature"],
            registry=r,
        )
        self.detected = Gauge("mlp_drift_detected", "1 when any feature drifted", registry=r)
        self.psi_threshold = Gauge(
            "mlp_drift_psi_threshold", "PSI at or above which a feature is flagged", registry=r
        )
        self.current_samples = Gauge(
            "mlp_drift_current_samples", "Rows in the evaluated window", registry=r
        )
        self.reference_samples = Gauge(
            "mlp_drift_reference_samples", "Rows in the training reference", registry=r
        )
        self.last_evaluation = Gauge(
            "mlp_drift_last_evaluation_timestamp_seconds",
            "Unix time of the last evaluation, whatever its outcome",
            registry=r,
        )
        self.evaluations = Counter(
            "mlp_drift_evaluations", "Evaluations by outcome", ["outcome"], registry=r
        )
        for outcome in ("ok", "insufficient", "error"):
            self.evaluations.labels(outcome=outcome)

    def update(self, report: DriftReport, now: float) -> None:
        self.psi_threshold.set(report.thresholds.psi)
        self.current_samples.set(report.current_samples)
        self.reference_samples.set(report.reference_samples)
        self.last_evaluation.set(now)
        self.detected.set(1 if report.drift_detected else 0)
        if not report.sufficient:
            # Too few rows to judge: drop per-feature values rather than keep stale ones.
            for family in (self.psi, self.ks_statistic, self.ks_pvalue, self.feature_drifted):
                family.clear()
            self.evaluations.labels(outcome="insufficient").inc()
            return
        for f in report.features:
            self.psi.labels(feature=f.feature).set(f.psi)
            self.ks_statistic.labels(feature=f.feature).set(f.ks_statistic)
            self.ks_pvalue.labels(feature=f.feature).set(f.ks_pvalue)
            self.feature_drifted.labels(feature=f.feature).set(1 if f.drifted else 0)
        self.evaluations.labels(outcome="ok").inc()

    def failed(self, now: float) -> None:
        self.last_evaluation.set(now)
        self.evaluations.labels(outcome="error").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ObservationMetrics:
    """The long-running monitor's families: what each replica saw, binned by the reference.

    Drift itself is computed by Prometheus recording rules from these, summed over replicas
    (components/drift/README.md), so no replica's share of the traffic matters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["feature", "bin", "reference_version"]
        self.observations = Counter(
            "mlp_drift_feature_observations",
            "Served feature values per reference bin (bins of the reference's histogram)",
            labels,
            registry=r,
        )
        self.reference_ratio = Gauge(
            "mlp_drift_reference_ratio",
            "Share of the reference's training values in each bin",
            labels,
            registry=r,
        )
        self.reference_version = Gauge(
            "mlp_drift_reference_version",
            "Registry version whose training statistics are the reference (0: a local file)",
            registry=r,
        )
        self.rows = Counter("mlp_drift_rows", "Feature rows received", registry=r)
        self.reference_errors = Counter(
            "mlp_drift_reference_errors",
            "Failed reads of the registry's production pointer or statistics",
            registry=r,
        )
        self.retrain = Counter(
            "mlp_drift_retrain_notifications",
            "Alertmanager notifications by what they led to",
            ["outcome"],
            registry=r,
        )
        for outcome in ("submitted", "cooldown", "ignored", "rejected", "failed"):
            self.retrain.labels(outcome=outcome)
        # A scrape reads the families one after another: a switch between two of them would
        # expose the new version's number beside the old version's counters.
        self._switch = threading.Lock()

    def set_reference(self, reference: Reference) -> None:
        """Switch to ``reference``: the old version's series go, the new ones start at 0."""
        version = reference.version
        with self._switch:
            self.observations.clear()
            self.reference_ratio.clear()
            for name, bins in reference.features.items():
                for index, ratio in enumerate(bins.ratios):
                    self.reference_ratio.labels(name, str(index), version).set(ratio)
                    self.observations.labels(name, str(index), version)
            self.reference_version.set(int(version) if version.isdigit() else 0)

    def observe(self, reference: Reference, matrix: FloatArray) -> None:
        """Count each feature column of ``matrix`` (rows in ``reference.names`` order)."""
        with self._switch:
            for j, (name, bins) in enumerate(reference.features.items()):
                counts = bin_counts(bins.edges, matrix[:, j])
                for index in np.flatnonzero(counts):
                    self.observations.labels(name, str(index), reference.version).inc(
                        float(counts[index])
                    )
            self.rows.inc(matrix.shape[0])

    def exposition(self) -> bytes:
        """One consistent scrape: never half before and half after a reference switch."""
        with self._switch:
            return generate_latest(self.registry)
