"""Canonical Kubernetes quantities, so equal amounts always serialize the same."""

from __future__ import annotations

from decimal import Decimal

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def parse_quantity(text: str) -> Decimal:
    """'256Mi' -> 268435456, '100m' -> 0.1."""
    for suffix, factor in (*BINARY.items(), *DECIMAL.items()):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    if text.endswith("m"):
        return Decimal(text[:-1]) / 1000
    return Decimal(text)


def canonical_cpu(text: str) -> str:
    """'0.5' -> '500m', '1000m' -> '1', '250m' -> '250m'."""
    value = parse_quantity(text)
    if value == value.to_integral_value():
        return str(int(value))
    return f"{int((value * 1000).to_integral_value())}m"


def canonical_bytes(text: str) -> str:
    """'1024Mi' -> '1Gi', '1000M' -> '1G'; keeps the binary/decimal family of the input."""
    value = parse_quantity(text)
    family = BINARY if any(text.endswith(s) for s in BINARY) else DECIMAL
    if value != value.to_integral_value():
        return text
    units = int(value)
    for suffix, factor in sorted(family.items(), key=lambda kv: -kv[1]):
        if units >= factor and units % factor == 0:
            return f"{units // factor}{suffix}"
    return str(units)
