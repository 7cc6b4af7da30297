"""Canonical quantities: equal amounts serialize the same way."""

from __future__ import annotations

import pytest

from platformgen.quantity import canonical_bytes, canonical_cpu


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0.5", "500m"),
        ("500m", "500m"),
        ("1000m", "1"),
        ("2", "2"),
        ("0.1", "100m"),
        ("1.5", "1500m"),
    ],
)
def test_cpu(given: str, expected: str) -> None:
    assert canonical_cpu(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1024Mi", "1Gi"),
        ("512Mi", "512Mi"),
        ("2048Ki", "2Mi"),
        ("1000M", "1G"),
        ("1500M", "1500M"),
        ("1536Mi", "1536Mi"),
    ],
)
def test_bytes(given: str, expected: str) -> None:
    assert canonical_bytes(given) == expected
