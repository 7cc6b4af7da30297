"""The one place component images come from.

Every ``@dsl.component`` takes its ``base_image`` from :func:`step_image`, so switching images (to
the values in ``platform.yaml``) is a change to this module only. Names contain ``python``
(kfp.local's SubprocessRunner warns about images that do not).
"""

from __future__ import annotations

REGISTRY = "registry.example.com/mlp"
TAG = "0.1.0"

# Step name -> the component (and image) that runs it. plan, register, promote and reuse share
# the register image; snapshot shares the ingest image.
STEP_COMPONENT = {
    "ingest": "ingest",
    "snapshot": "ingest",
    "validate": "validate",
    "preprocess": "preprocess",
    "train": "train",
    "evaluate": "evaluate",
    "plan": "register",
    "register": "register",
    "promote": "register",
    "reuse": "register",
}


def step_image(step: str) -> str:
    """The container image of a pipeline step: ``<registry>/<component>-python:<tag>``."""
    try:
        component = STEP_COMPONENT[step]
    except KeyError:
        raise ValueError(f"unknown pipeline step {step!r}") from None
    return f"{REGISTRY}/{component}-python:{TAG}"
