"""scripts/image_plan.py, the pure core of scripts/images.py: which images the spec builds,
with which tags, and the content key that decides whether an image is rebuilt (the
Dockerfile, the files its COPY lines send minus .dockerignore, the base). The builds
themselves are tested in tests/images/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import ROOT, load_script

image_plan = load_script("image_plan")


def _spec():  # type: ignore[no-untyped-def]
    from platformgen.spec.load import load_spec

    return load_spec(ROOT / "platform.yaml")


def test_plan_lists_every_build_with_the_tags_the_environments_use() -> None:
    spec = _spec()
    plan = image_plan.plan(spec)
    assert [image.folder for image in plan] == sorted(spec.builds.images)
    for image in plan:
        build = spec.builds.images[image.folder]
        assert image.repository == build.repository and image.package == build.package
        assert spec.defaults.image_tag in image.tags
    # Every tag reference the dev overlay deploys is one the build produces.
    from platformgen.spec.effective import environment_image

    built = {ref for image in plan for ref in image.references}
    for name, component in spec.components.items():
        reference = environment_image(spec, "dev", name, component.image)
        assert reference in built, f"{name}: dev runs {reference}, which no build tags"


def test_copied_sources_are_the_context_copies_of_the_dockerfile() -> None:
    text = (ROOT / "pipelines" / "Dockerfile").read_text(encoding="utf-8")
    sources = image_plan.copied_sources(text)
    assert sources[0] == "pipelines/requirements.txt"
    assert "components/common/mlp_common" in sources
    assert "pipelines/mlp_pipeline" in sources
    assert not any(source.startswith("/opt") for source in sources)  # COPY --from=build


def test_copied_sources_reads_continued_lines_and_flags() -> None:
    text = "FROM x\nCOPY --chown=1:1 a b \\\n   /dst/\nCOPY --from=build /opt /opt\n"
    assert image_plan.copied_sources(text) == ["a", "b"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("components/serve/mlp_serve/__pycache__/x.pyc", True),
        ("components/serve/mlp_serve/server.py", False),
        (".venv/bin/python", True),
        ("base/kustomization.yaml", True),
        ("basement/file", False),
    ],
)
def test_dockerignore_patterns(path: str, expected: bool) -> None:
    assert image_plan.ignored(path, image_plan.dockerignore(ROOT)) is expected


def _context(tmp_path: Path) -> Path:
    """A copy of what components/serve/Dockerfile sends, plus .dockerignore."""
    root = tmp_path / "repo"
    text = (ROOT / "components/serve/Dockerfile").read_text(encoding="utf-8")
    for source in image_plan.copied_sources(text):
        target = root / source
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / source, target)
    shutil.copyfile(ROOT / "components/serve/Dockerfile", root / "components/serve/Dockerfile")
    shutil.copyfile(ROOT / ".dockerignore", root / ".dockerignore")
    return root


def test_content_key_changes_with_what_the_build_reads_only(tmp_path: Path) -> None:
    root = _context(tmp_path)
    image = image_plan.Image("components/serve", "r/serve", "mlp_serve", ("1",))
    key = image_plan.content_key(root, image, "base-1")
    assert image_plan.content_key(root, image, "base-1") == key  # deterministic
    assert image_plan.content_key(root, image, "base-2") != key  # the base
    (root / "components/serve/README.md").write_text("not copied\n")
    cache = root / "components/serve/mlp_serve/__pycache__"
    cache.mkdir()
    (cache / "server.cpython-311.pyc").write_bytes(b"ignored by .dockerignore")
    assert image_plan.content_key(root, image, "base-1") == key
    server = root / "components/serve/mlp_serve/server.py"
    server.write_text(server.read_text() + "\n# changed\n")
    assert image_plan.content_key(root, image, "base-1") != key  # a copied file
    changed = image_plan.content_key(root, image, "base-1")
    shared = root / "components/common/mlp_common/__init__.py"
    shared.write_text(shared.read_text() + "\n")
    assert image_plan.content_key(root, image, "base-1") != changed  # the shared package


def test_base_stand_in_is_refused_for_a_digest_or_another_distribution() -> None:
    assert image_plan.base_reference("python:3.11-slim-bookworm") == (
        "docker.io/library/python:3.11-slim-bookworm",
        "bookworm",
        "3.11",
    )
    with pytest.raises(image_plan.ImagesError, match="builds.baseImage: .*pinned by digest"):
        image_plan.base_reference("python:3.11-slim-bookworm@sha256:" + "a" * 64)
    with pytest.raises(image_plan.ImagesError, match="builds.baseImage: 'alpine:3.20'"):
        image_plan.base_reference("alpine:3.20")
