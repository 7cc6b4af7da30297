"""Shared helpers for the ML steps.

Every step depends on this one small package, so nothing here is copied between steps:

- ``mlp_common.files``: atomic file and directory writes (temp, then rename).
- ``mlp_common.dataset``: dataset I/O (CSV/Parquet from a path or an S3-compatible URI), the
  versioned dataset directory layout and its content hash.
- ``mlp_common.registry``: the model registry (``models/<model>/versions/<n>/``, ``latest`` and
  ``production`` pointers). Its read API is stable and used by the serving component.
- ``mlp_common.storage``: local and object-store (fsspec) directories: download, upload.
- ``mlp_common.statistics``: per-feature statistics, the reference for skew and drift.
- ``mlp_common.metrics``: metric files and the ``name=value`` stdout lines Katib collects.
- ``mlp_common.seeds``: explicit, global seeding for Python, NumPy and TensorFlow.
- ``mlp_common.step``: the ``main(argv) -> int`` shell every step CLI uses, and ``StepError``.
- ``mlp_common.provenance``: code version (git sha) and UTC timestamps.
- ``mlp_common.faults``: opt-in transient-fault injection (proves pipeline retries).
- ``mlp_common.testing``: a local S3-compatible server for tests (moto; test-only).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
