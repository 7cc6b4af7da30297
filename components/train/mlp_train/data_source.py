"""Which preprocessed data a training run read, and reading it back through the registry.

Every model directory records its input as ``data.json``::

    {"uri": "<where the preprocess output lives>", "files": {"train.parquet": "sha256:...", ...}}

``uri`` is what the pipeline's preprocess step wrote: its KFP ``Dataset`` artifact (the train
component passes ``data.uri``: under the pipeline root on a cluster, under the local pipeline
root with kfp.local). The register step copies the model directory into the registry version,
so the registry records, per version, the exact preprocessed data that trained it.

:func:`resolve` goes the other way: ``--data-from-registry URI --model NAME --version REF``
(Katib trials, ``make tune``) finds that version (``production`` follows the pointer), reads its
``data.json``, fetches the data from the recorded URI and checks every file's sha256, so a trial
trains on exactly the data the pipeline wrote for the model in production, or fails saying why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlp_common.dataset import fetch_checked, file_sha256
from mlp_common.files import read_json
from mlp_common.step import StepError

from mlp_train.core import DATA_FILE

RECORDED = ("features.json", "train.parquet", "val.parquet", "test.parquet")
"""The preprocess outputs a training run reads (and whose hashes it records)."""
KFP_MINIO_SCHEME = "minio://"
"""KFP names artifacts in its bundled MinIO minio://<bucket>/<key>; the same object over the S3
API (AWS_ENDPOINT_URL) is s3://<bucket>/<key>."""


def store_uri(uri: str) -> str:
    """``uri`` in a form the object-store client reads (minio:// -> s3://)."""
    if uri.startswith(KFP_MINIO_SCHEME):
        return "s3://" + uri.removeprefix(KFP_MINIO_SCHEME)
    return uri


def describe(data_dir: str | os.PathLike[str], uri: str) -> dict[str, Any]:
    """``data.json`` for a run that read ``data_dir``, which lives at ``uri``."""
    local = Path(data_dir)
    return {
        "uri": uri,
        "files": {name: file_sha256(local / name) for name in RECORDED if (local / name).is_file()},
    }


def resolve(registry: str, model: str, version: str) -> tuple[Path, str, int]:
    """(a local copy of, the URI of, the version number of) the preprocessed data that trained
    ``model`` ``version`` in ``registry``, checked against the hashes the version recorded."""
    from mlp_common.registry import ModelRegistry

    found = ModelRegistry(registry).get(model, version)
    where = f"--data-from-registry {registry}: {model} version {found.version}"
    record_path = found.path / DATA_FILE
    if not record_path.is_file():
        raise StepError(
            f"{where} ({version}) records no {DATA_FILE}: it was trained before training runs "
            "recorded their data; run the pipeline once to register a version that does"
        )
    record = read_json(record_path)
    uri = str(record.get("uri") or "")
    files = record.get("files") or {}
    if not uri or "train.parquet" not in files:
        raise StepError(f"{where}: {DATA_FILE} has no uri or no train.parquet hash")
    return fetch_checked(store_uri(uri), files, where, "the version recorded"), uri, found.version
