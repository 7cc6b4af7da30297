"""Which image runs each pipeline step, read from platform.yaml when the pipeline is compiled.

``platform.yaml`` declares the images: ``pipelines.<name>.steps.<component>.image``, tagged
``defaults.imageTag``. :func:`spec_step_images` reads them (through platformgen's own spec
loader, so the spec's checks and defaults apply) for ``mlp-pipeline compile`` and the local run,
which both run in the repository. The pipeline image, where platform.yaml is absent, only
submits and schedules the compiled pipeline and never asks for an image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

SPEC_PATH = Path(__file__).resolve().parent.parent.parent / "platform.yaml"
"""The repository's platform.yaml (the pipeline is compiled in a checkout)."""

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


def step_images(
    pipeline: str, steps: Mapping[str, str], image_tag: str, source: str = "platform.yaml"
) -> dict[str, str]:
    """Step name -> its image, ``<steps[component]>:<image_tag>``, for every step of
    STEP_COMPONENT (``steps``: the spec's component -> image repository)."""
    missing = sorted(set(STEP_COMPONENT.values()) - set(steps))
    if missing:
        raise ValueError(
            f"{source}: pipelines.{pipeline}.steps: no image for {', '.join(missing)}"
            " (the pipeline runs them)"
        )
    return {step: f"{steps[component]}:{image_tag}" for step, component in STEP_COMPONENT.items()}


def spec_step_images(pipeline: str, path: Path = SPEC_PATH) -> dict[str, str]:
    """The step images of `pipeline` as platform.yaml at `path` declares them."""
    from platformgen.spec.load import load_spec  # the repository's generator: compile time only

    spec = load_spec(path)
    declared = spec.pipelines[pipeline].steps
    return step_images(
        pipeline, {name: step.image for name, step in declared.items()}, spec.defaults.image_tag
    )
