"""The monitor's observation families under a concurrent reference switch."""

from __future__ import annotations

import threading
import time

from mlp_drift.metrics import ObservationMetrics
from mlp_drift.reference import FeatureBins, Reference
from prometheus_client.parser import text_string_to_metric_families


def _reference(version: str) -> Reference:
    bins = FeatureBins(edges=(0.0, 1.0), counts=(1, 2, 1))
    features = {f"feature_{i}": bins for i in range(40)}
    return Reference(features=features, version=version, source="test")


def _versions(exposition: bytes) -> tuple[float, set[str]]:
    number, labelled = 0.0, set()
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            if sample.name == "mlp_drift_reference_version":
                number = sample.value
            elif "reference_version" in sample.labels:
                labelled.add(sample.labels["reference_version"])
    return number, labelled


def test_a_scrape_never_mixes_two_references() -> None:
    """A scrape during a switch shows the old reference or the new one, never the new version
    number beside the old version's counters (seen in CI before the switch took a lock)."""
    metrics = ObservationMetrics()
    metrics.set_reference(_reference("1"))
    stop = threading.Event()

    def switch() -> None:
        version = 1
        while not stop.is_set():
            version = 3 - version
            metrics.set_reference(_reference(str(version)))
            time.sleep(0.0005)  # let the scraper take the lock too

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        mixed = []
        for _ in range(300):
            number, labelled = _versions(metrics.exposition())
            if labelled != {str(int(number))}:
                mixed.append((number, sorted(labelled)))
    finally:
        stop.set()
        switcher.join()
    assert not mixed, f"scrapes mixing two references: {mixed[:3]}"
