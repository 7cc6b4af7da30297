"""The spec and the images agree: Dockerfile EXPOSE equals the spec's ports, USER its runAsUser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from platformgen.spec.load import load_spec

from support import ROOT

SPEC = load_spec(ROOT / "platform.yaml")


def dockerfile_for(image: str) -> Path:
    """The Dockerfile of the build whose repository is `image` (builds.images in the spec)."""
    assert SPEC.builds is not None, "platform.yaml declares no builds"
    folders = [f for f, build in SPEC.builds.images.items() if build.repository == image]
    assert len(folders) == 1, f"{image}: built by {folders or 'no builds.images entry'}"
    return ROOT / folders[0] / "Dockerfile"


def instructions(path: Path, keyword: str) -> list[str]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.strip().upper().startswith(keyword + " ")
    ]


@pytest.mark.parametrize("name", sorted(SPEC.components))
def test_dockerfile_matches_the_spec(name: str) -> None:
    component = SPEC.components[name]
    dockerfile = dockerfile_for(component.image)
    assert dockerfile.is_file(), f"{name}: no {dockerfile.relative_to(ROOT)} for {component.image}"
    exposed = {
        int(p.split("/")[0]) for line in instructions(dockerfile, "EXPOSE") for p in line.split()
    }
    assert exposed == {p.port for p in component.ports}, f"{name}: EXPOSE {exposed}"
    users = instructions(dockerfile, "USER")
    assert users, f"{dockerfile}: no USER"
    assert users[-1].split(":")[0] == str(SPEC.defaults.run_as_user)


@pytest.mark.parametrize(
    ("pipeline", "step"),
    sorted((p, s) for p, pipeline in SPEC.pipelines.items() for s in pipeline.steps),
)
def test_pipeline_step_images_have_dockerfiles(pipeline: str, step: str) -> None:
    dockerfile = dockerfile_for(SPEC.pipelines[pipeline].steps[step].image)
    assert dockerfile.is_file(), f"{pipeline}.{step}: no {dockerfile.relative_to(ROOT)}"
    assert not instructions(dockerfile, "EXPOSE"), f"{dockerfile}: a batch step serves nothing"
    assert instructions(dockerfile, "USER")[-1].split(":")[0] == str(SPEC.defaults.run_as_user)


@pytest.mark.parametrize("folder", sorted(SPEC.builds.images) if SPEC.builds else [])
def test_every_build_folder_holds_what_its_dockerfile_copies(folder: str) -> None:
    assert SPEC.builds is not None
    build = SPEC.builds.images[folder]
    assert (ROOT / folder / "requirements.txt").is_file(), f"{folder}: no requirements.txt"
    packages = [
        *SPEC.builds.shared_packages,
        *(f"{other}/{SPEC.builds.images[other].package}" for other in build.includes),
        f"{folder}/{build.package}",
    ]
    for package in packages:
        assert (ROOT / package / "__init__.py").is_file(), f"{folder}: {package} is no package"
    assert (ROOT / folder / build.package / "__main__.py").is_file(), f"{folder}: no entrypoint"


def test_make_requirements_exports_for_the_builds_the_spec_declares() -> None:
    """mlp_pipeline.requirements.IMAGES (what `make requirements` exports) agrees with builds."""
    from mlp_pipeline.requirements import IMAGES

    assert SPEC.builds is not None
    for folder, distribution in IMAGES.items():
        assert folder in SPEC.builds.images, f"{folder}: exported, but no builds.images entry"
        assert distribution == SPEC.builds.images[folder].package.replace("_", "-"), folder
