"""Cluster facts the compiled pipeline carries: which ConfigMap and Secret give the steps access to
the object store, and the registry URI. Kept in one place (like :mod:`mlp_pipeline.images`) so they
follow ``platform.yaml`` with one change.

Steps read datasets and the model registry from ``s3://`` URIs. On the cluster every step gets
``AWS_ENDPOINT_URL`` from the ConfigMap ``mlp-object-store`` (key ``endpoint``; rendered by the
platform generator into the pipeline namespace) and the credentials from KFP's own object-store
Secret ``mlpipeline-minio-artifact`` (keys ``accesskey``/``secretkey``). Both are Kubernetes
platform settings, which kfp.local ignores: local runs use the caller's environment.
"""

from __future__ import annotations

OBJECT_STORE_CONFIG_MAP = "mlp-object-store"
OBJECT_STORE_CONFIG_KEYS = {"endpoint": "AWS_ENDPOINT_URL"}
OBJECT_STORE_SECRET = "mlpipeline-minio-artifact"
OBJECT_STORE_SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
MODEL_REGISTRY = "s3://mlp-models/registry"
DATASET_SNAPSHOTS = "s3://mlp-models/datasets"
