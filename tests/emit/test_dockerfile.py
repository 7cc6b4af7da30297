"""The Dockerfile emitter: one template, every difference from the spec, checked like the trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platformgen.cli import main
from platformgen.emit.dockerfile import emit_dockerfiles
from platformgen.serialize import HEADER
from platformgen.spec.load import load_spec, parse_spec

from support import ROOT, SPECS, snapshot

SPEC_TEXT = (ROOT / "platform.yaml").read_text()


def dockerfiles(text: str) -> dict[str, str]:
    return emit_dockerfiles(parse_spec(text))


def lines(text: str, keyword: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith(f"{keyword} ")]


def test_the_committed_dockerfiles_are_what_the_spec_renders() -> None:
    rendered = emit_dockerfiles(load_spec(ROOT / "platform.yaml"))
    on_disk = sorted(
        p.relative_to(ROOT).as_posix()
        for p in [*ROOT.glob("components/*/Dockerfile"), *ROOT.glob("pipelines/Dockerfile")]
    )
    assert sorted(rendered) == on_disk
    for path, text in rendered.items():
        assert (ROOT / path).read_bytes() == text.encode(), f"{path}: stale, run `make render`"


def test_every_dockerfile_starts_with_the_generated_header() -> None:
    for path, text in dockerfiles(SPEC_TEXT).items():
        assert text.startswith(HEADER), path
        assert text.splitlines()[1].startswith(f"# Source: builds.images.{path[:-11]} "), path
        assert text.endswith("\n") and "\r" not in text and "\n\n\n" not in text, path


def test_user_follows_run_as_user() -> None:
    before = dockerfiles(SPEC_TEXT)
    after = dockerfiles(SPEC_TEXT.replace("runAsUser: 10001", "runAsUser: 23456", 1))
    assert set(before) == set(after)
    for path in before:
        assert lines(before[path], "USER") == ["10001:10001"], path
        assert lines(after[path], "USER") == ["23456:23456"], path
        assert "# 23456 = defaults.runAsUser" in after[path]


def test_expose_and_the_port_variable_follow_the_component_ports() -> None:
    before = dockerfiles(SPEC_TEXT)
    assert lines(before["components/serve/Dockerfile"], "EXPOSE") == ["8080"]
    assert lines(before["components/drift/Dockerfile"], "EXPOSE") == ["8000 8001"]
    # The port variable is the program's own port, not the alert webhook's (8001).
    assert "    MLP_DRIFT_PORT=8000\n" in before["components/drift/Dockerfile"]
    batch = [
        p for p in before if p not in {"components/serve/Dockerfile", "components/drift/Dockerfile"}
    ]
    assert batch and all(not lines(before[p], "EXPOSE") for p in batch)

    moved = SPEC_TEXT.replace(
        "ports: [{name: metrics, port: 8000}, {name: alerts, port: 8001}]",
        "ports: [{name: metrics, port: 9100}, {name: alerts, port: 8001}]",
    )
    after = dockerfiles(moved)
    assert lines(after["components/drift/Dockerfile"], "EXPOSE") == ["8001 9100"]
    assert "    MLP_DRIFT_PORT=9100\n" in after["components/drift/Dockerfile"]
    assert {p: t for p, t in after.items() if "drift" not in p} == {
        p: t for p, t in before.items() if "drift" not in p
    }


def test_serving_and_batch_images_differ_only_in_spec_data() -> None:
    files = dockerfiles(SPEC_TEXT)
    serve, ingest = files["components/serve/Dockerfile"], files["components/ingest/Dockerfile"]
    assert "checkov:skip=CKV_DOCKER_2:Kubernetes ignores HEALTHCHECK" in serve
    assert "checkov:skip=CKV_DOCKER_2:a batch step" in ingest
    assert "KFP runs the lightweight component" in ingest  # a pipeline step image
    assert "KFP runs the lightweight component" not in serve
    assert "KFP runs" not in files["pipelines/Dockerfile"]  # submits runs, is no step
    assert lines(files["components/drift/Dockerfile"], "CMD") == ['["serve"]']
    assert lines(ingest, "ENTRYPOINT") == ['["python", "-m", "mlp_ingest"]']
    assert lines(files["pipelines/Dockerfile"], "COPY")[2:] == [
        "components/common/mlp_common /app/mlp_common",
        *(
            f"components/{step}/mlp_{step} /app/mlp_{step}"
            for step in ("ingest", "validate", "preprocess", "train", "evaluate", "register")
        ),
        "pipelines/mlp_pipeline /app/mlp_pipeline",
    ]


def test_the_base_image_is_declared_once() -> None:
    pinned = "python:3.11-slim-bookworm@sha256:" + "ab" * 32
    files = dockerfiles(
        SPEC_TEXT.replace("baseImage: python:3.11-slim-bookworm", f"baseImage: {pinned}", 1)
    )
    for path, text in files.items():
        assert lines(text, "FROM") == [f"{pinned} AS build", pinned], path
        assert "pinned by digest" in text and "could not be verified" not in text


def test_a_new_image_needs_only_spec_data() -> None:
    entry = (
        "    components/score:\n"
        "      repository: registry.example.com/mlp/score-python\n"
        "      description: batch scoring (mlp_score)\n"
        "      package: mlp_score\n"
        "      args: [--batch-size=64]\n"
        "      env: {MLP_SCORE_OUTPUT: s3://mlp-artifacts/scores}\n"
    )
    text = SPEC_TEXT.replace(
        "    pipelines:\n      repository:", entry + "    pipelines:\n      repository:", 1
    )
    new = dockerfiles(text)["components/score/Dockerfile"]
    assert "COPY components/score/requirements.txt /tmp/requirements.txt" in new
    assert "COPY components/score/mlp_score /app/mlp_score" in new
    assert "    MLP_SCORE_OUTPUT=s3://mlp-artifacts/scores\n" in new
    assert lines(new, "ENTRYPOINT") == ['["python", "-m", "mlp_score"]']
    assert lines(new, "CMD") == ['["--batch-size=64"]']
    assert not lines(new, "EXPOSE")


def test_no_builds_no_dockerfiles() -> None:
    assert emit_dockerfiles(load_spec(SPECS / "minimal.yaml")) == {}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The full fixture rendered into a fresh folder, as `platformgen render` writes it."""
    shutil.copyfile(SPECS / "full.yaml", tmp_path / "platform.yaml")
    assert main(["render", "--spec", str(tmp_path / "platform.yaml")]) == 0
    assert (tmp_path / "services" / "api" / "Dockerfile").is_file()
    return tmp_path


def check(repo: Path) -> int:
    return main(["check", "--spec", str(repo / "platform.yaml")])


def test_a_hand_edited_dockerfile_fails_check(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(repo) == 0
    dockerfile = repo / "services" / "api" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 20001:20001", "USER root"))
    capsys.readouterr()
    assert check(repo) == 1
    err = capsys.readouterr().err
    assert "changed: services/api/Dockerfile" in err and "run `make render`" in err
    assert "Traceback" not in err


def test_a_missing_dockerfile_fails_check_and_render_restores_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(repo)
    (repo / "jobs" / "ingest" / "Dockerfile").unlink()
    assert check(repo) == 1
    assert "missing: jobs/ingest/Dockerfile" in capsys.readouterr().err
    assert main(["render", "--spec", str(repo / "platform.yaml")]) == 0
    assert snapshot(repo) == before


def test_an_orphan_dockerfile_fails_check_and_render_removes_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image dropped from the spec leaves its rendered Dockerfile behind: check names it."""
    spec = repo / "platform.yaml"
    text = spec.read_text()
    entry = text[text.index("    services/predictor:\n") : text.index("    jobs/ingest:\n")]
    spec.write_text(text.replace(entry, ""))
    copied = repo / "tests" / "golden" / "services" / "api" / "Dockerfile"
    copied.parent.mkdir(parents=True)  # a rendered Dockerfile copied elsewhere is not ours
    shutil.copyfile(repo / "services" / "api" / "Dockerfile", copied)
    handwritten = repo / "tools" / "Dockerfile"
    handwritten.parent.mkdir()
    handwritten.write_text("FROM alpine:3.20\n")  # no generated header: not ours either
    capsys.readouterr()
    assert check(repo) == 1
    err = capsys.readouterr().err
    assert "extra:   services/predictor/Dockerfile" in err
    assert "tools/" not in err and "tests/" not in err
    assert main(["render", "--spec", str(spec)]) == 0
    assert not (repo / "services" / "predictor" / "Dockerfile").exists()
    assert copied.is_file() and handwritten.is_file()
    assert check(repo) == 0


def test_bad_builds_name_the_spec_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "platform.yaml"
    spec.write_text(SPEC_TEXT.replace("package: mlp_drift", "package: mlp-drift", 1))
    assert main(["check", "--spec", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "error: platform.yaml: builds.images.components/drift.package: 'mlp-drift'" in err
    assert "Traceback" not in err
