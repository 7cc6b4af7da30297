"""Shared helpers for the ML steps: dataset I/O, content hashing, atomic writes, model registry, metrics, seeds."""
