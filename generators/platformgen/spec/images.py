"""Image pins that cannot all hold: one repository, two references in one environment.

kustomize's `images:` and the chart's values retag by repository, so every component (and
every pipeline step) that runs a repository runs the same reference in an environment.
Each problem is `(spec path, message)`.
"""

from __future__ import annotations

from collections.abc import Iterator

from platformgen.spec.effective import environment_image, image_entry
from platformgen.spec.model import PlatformSpec

Problem = tuple[str, str]


def check_image_pins(spec: PlatformSpec) -> list[Problem]:
    """Every repository pinned two ways in one environment, at the spec path of the second."""
    return [*_component_pins(spec), *_step_pins(spec)]


def _component_pins(spec: PlatformSpec) -> Iterator[Problem]:
    for environment in spec.environments:
        first: dict[str, tuple[str, dict[str, str]]] = {}
        for name in sorted(spec.components):
            entry = image_entry(spec, environment, name)
            if entry is None:
                continue
            image = entry["name"]
            if image in first and first[image][1] != entry:
                yield (
                    f"environments.{environment}.images.{name}",
                    f"image {image!r} is shared with {first[image][0]!r} but pinned differently",
                )
            first.setdefault(image, (name, entry))


def _step_pins(spec: PlatformSpec) -> Iterator[Problem]:
    for environment, env in spec.environments.items():
        for name, pipeline in spec.pipelines.items():
            pins = env.pipelines.get(name)
            found: dict[str, str] = {}
            for step, declared in pipeline.steps.items():
                pin = pins.steps.get(step) if pins is not None else None
                image = environment_image(spec, environment, step, declared.image, pin)
                if found.setdefault(declared.image, image) != image:
                    yield (
                        f"environments.{environment}.pipelines.{name}.steps.{step}",
                        f"image {declared.image!r} is shared with another step but pinned "
                        "differently",
                    )
