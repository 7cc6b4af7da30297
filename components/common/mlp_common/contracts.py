"""Names the platform's generator and the components share: the environment variables
platformgen sets in a component's container and the component reads. Written once, here;
platformgen (generators/platformgen) imports this module, and so do the components.

Plain constants only: importing this module imports nothing else.
"""

from __future__ import annotations

MODEL = "MLP_MODEL"
"""The registry model a server serves (platformgen: `components.<c>.model.name`)."""
MODEL_VERSION = "MLP_MODEL_VERSION"
"""The version it serves: a number pins it, `production` follows the registry's pointer."""
MODEL_SETTINGS = (MODEL, MODEL_VERSION)
"""The settings `components.<c>.model` renders (set nowhere else in the spec)."""
REGISTRY = "MLP_REGISTRY"
"""The model registry root a component reads (a path or an s3:// URI)."""
CODE_VERSION = "MLP_CODE_VERSION"
"""The code version baked into an image (platformgen's Dockerfile ENV, from the build arg)."""
NUM_WORKERS = "MLP_NUM_WORKERS"
"""How many workers a distributed TrainJob runs (TF_CONFIG's worker list)."""
WORKER_PORT = "MLP_WORKER_PORT"
"""The port the workers of a distributed TrainJob reach each other on."""
PIPELINE = "MLP_PIPELINE"
"""The KFP pipeline a long-running component starts runs of (platformgen:
`components.<c>.pipeline` on a Deployment; Jobs and RecurringRuns get `--pipeline` instead)."""
PIPELINE_NAMESPACE = "MLP_PIPELINE_NAMESPACE"
"""The namespace of that pipeline (`pipelines.<p>.namespace`)."""
PIPELINE_VERSION = "MLP_PIPELINE_VERSION"
"""The PipelineVersion this environment deploys of that pipeline (content-named, so it differs
per environment; rendered in each overlay, absent from base)."""
PIPELINE_SETTINGS = (PIPELINE, PIPELINE_NAMESPACE, PIPELINE_VERSION)
"""The settings `components.<c>.pipeline` renders on a Deployment (set nowhere else)."""
