"""Releases as spec edits: `set-image`, `promote` and `promote-model` change exactly one value
of the spec, keeping every comment, blank line, key order and quote, and re-render the trees;
`promote-model` first checks the registry (gate passed, the environment's metric floors)."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
from mlp_common.registry import ModelRegistry

from platformgen.cli import main
from platformgen.release import (
    ReleaseError,
    parse_reference,
    promote,
    served_model,
    set_image,
    set_value,
)
from platformgen.spec.load import parse_spec

from support import FIXTURES, ROOT, snapshot

ODD = FIXTURES / "release" / "odd.yaml"
DIGEST = "sha256:" + "ab" * 32


def changed_lines(before: str, after: str) -> list[str]:
    """The diff as '-old' / '+new' lines, without context."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize(
    ("component", "reference", "env", "expected"),
    [
        # an existing flow pin: only the scalar, in its original (plain) style
        ("worker", ":worker-2", "dev", ["-      worker: {tag: worker-1}   # flow pin, plain",
                                        "+      worker: {tag: worker-2}   # flow pin, plain"]),
        # an existing block pin: single quotes and the comment stay
        ("web", ":web-2", "dev", ["-        tag: 'web-1'     # block pin, single quotes",
                                  "+        tag: 'web-2'     # block pin, single quotes"]),
        # tag -> digest in a block pin: the key changes on that one line
        ("web", f"@{DIGEST}", "dev", [
            "-        tag: 'web-1'     # block pin, single quotes",
            f"+        digest: '{DIGEST}'     # block pin, single quotes"]),
        # a digest inside a nested flow mapping
        ("api", f"registry.example.com/odd/api@{DIGEST}", "prod", [
            "-    images: {api: {digest: 'sha256:" + "1" * 64 + "'}}",
            f"+    images: {{api: {{digest: '{DIGEST}'}}}}"]),
        # a new entry in an existing block mapping, in the siblings' indentation
        ("api", ":3.0.0", "dev", ['+      api: {tag: "3.0.0"}']),
        # a new entry in an existing flow mapping
        ("web", ":9", "prod", [
            "-    images: {api: {digest: 'sha256:" + "1" * 64 + "'}}",
            "+    images: {api: {digest: 'sha256:" + "1" * 64 + "'}, web: {tag: \"9\"}}"]),
        # an environment without images, in flow style
        ("web", ":1.5", "staging", ["-  staging: {}",
                                    '+  staging: {images: {web: {tag: "1.5"}}}']),
    ],
)  # fmt: skip
def test_set_image_changes_exactly_the_value(
    component: str, reference: str, env: str, expected: list[str]
) -> None:
    text = ODD.read_text(encoding="utf-8")
    spec = parse_spec(text)
    edited = set_image(text, spec, component, reference, env, "platform.yaml")
    assert changed_lines(text, edited) == expected
    ref = parse_reference(reference)
    pin = parse_spec(edited).environments[env].images[component]
    assert (pin.tag, pin.digest) == (ref.tag, ref.digest)


def test_new_images_block_goes_at_the_end_of_the_environment() -> None:
    text = ODD.read_text(encoding="utf-8").replace(
        "    images:\n      web:\n        tag: 'web-1'     # block pin, single quotes\n"
        "      worker: {tag: worker-1}   # flow pin, plain\n",
        "",
    )
    edited = set_image(text, parse_spec(text), "web", ":7", "dev", "platform.yaml")
    assert changed_lines(text, edited) == ["+    images:", '+      web: {tag: "7"}']
    assert edited.index("logLevel: debug") < edited.index("    images:\n")
    assert parse_spec(edited).environments["dev"].log_level == "debug"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("registry.example.com/odd/web", "needs a tag"),
        ("@sha256:abc", "64 lowercase hex"),
        ("@sha512:" + "a" * 64, "64 lowercase hex"),
        ("web:1@" + DIGEST, "not both"),
        (":-leading-dash", "not a valid tag"),
        (":" + "t" * 129, "not a valid tag"),
        ("registry.example.com/other/web:1", "runs 'registry.example.com/odd/web'"),
    ],
)
def test_bad_references_are_refused(reference: str, message: str) -> None:
    text = ODD.read_text(encoding="utf-8")
    with pytest.raises(ReleaseError, match=message):
        set_image(text, parse_spec(text), "web", reference, "dev", "platform.yaml")


def test_unknown_names_are_refused() -> None:
    text = ODD.read_text(encoding="utf-8")
    spec = parse_spec(text)
    with pytest.raises(ReleaseError, match=r"platform.yaml: components.nope: no such component"):
        set_image(text, spec, "nope", ":1", "dev", "platform.yaml")
    with pytest.raises(ReleaseError, match=r"environments.qa: no such environment"):
        set_image(text, spec, "web", ":1", "qa", "platform.yaml")


def test_promote_copies_the_exact_reference() -> None:
    text = ODD.read_text(encoding="utf-8")
    spec = parse_spec(text)
    edited = promote(text, spec, "api", "prod", "dev", "platform.yaml")
    assert parse_spec(edited).environments["dev"].images["api"].digest == "sha256:" + "1" * 64
    # An environment without a pin runs its imageTag (or the default): that is what moves.
    edited = promote(text, spec, "api", "dev", "staging", "platform.yaml")
    assert parse_spec(edited).environments["staging"].images["api"].tag == "2.0.0-dev"


def test_promote_refuses_a_floating_tag_where_digests_are_required() -> None:
    pins = f"web: {{digest: '{DIGEST}'}}, worker: {{digest: '{DIGEST}'}}, api: {{"
    text = (
        ODD.read_text(encoding="utf-8")
        .replace("  prod:\n", "  prod:\n    requireDigests: true\n")
        .replace("images: {api: {", "images: {" + pins)
    )
    spec = parse_spec(text)
    with pytest.raises(ReleaseError, match="requires digests.*floating tag 'worker-1'"):
        promote(text, spec, "worker", "dev", "prod", "platform.yaml")
    with pytest.raises(ReleaseError, match="requires digests"):
        set_image(text, spec, "worker", ":2", "prod", "platform.yaml")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The repo's spec and the compiled pipelines it names, rendered into a scratch folder."""
    out = tmp_path / "repo"
    (out / "pipelines").mkdir(parents=True)
    shutil.copy2(ROOT / "platform.yaml", out / "platform.yaml")
    shutil.copytree(ROOT / "pipelines" / "compiled", out / "pipelines" / "compiled")
    assert main(["render", "--spec", str(out / "platform.yaml")]) == 0
    return out


def test_cli_set_image_edits_one_line_and_rerenders(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = repo / "platform.yaml"
    before = spec.read_text(encoding="utf-8")
    capsys.readouterr()
    reference = f"registry.example.com/mlp/serve-python@{DIGEST}"
    assert main(["set-image", "model-server", reference, "--env", "prod", "--spec", str(spec)]) == 0
    printed = capsys.readouterr().out.split()
    after = spec.read_text(encoding="utf-8")
    diff = changed_lines(before, after)
    assert len(diff) == 2 and diff[1].endswith(f'{{digest: "{DIGEST}"}}'), diff
    assert printed[0] == "platform.yaml"
    kustomization = "overlays/prod/model-server/kustomization.yaml"
    assert kustomization in printed
    assert DIGEST in (repo / kustomization).read_text(encoding="utf-8")
    assert main(["check", "--spec", str(spec)]) == 0


def test_cli_dry_run_and_errors_change_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = repo / "platform.yaml"
    before = snapshot(repo)
    capsys.readouterr()
    args = ["--env", "dev", "--spec", str(spec), "--dry-run"]
    assert main(["set-image", "model-server", ":1.2.3", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- a/platform.yaml\n+++ b/platform.yaml\n")
    assert '+      model-server: {tag: "1.2.3"}' in out
    assert snapshot(repo) == before
    for bad in (["model-server", "x@sha256:0"], ["nope", ":1"], ["model-server", "nope"]):
        assert main(["set-image", *bad, "--env", "prod", "--spec", str(spec)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
    assert snapshot(repo) == before


# --- promote-model -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # an existing scalar: replaced in its own (single-quoted) style, the comment stays
        (("environments", "dev", "images", "web", "tag"),
         ["-        tag: 'web-1'     # block pin, single quotes",
          "+        tag: 'new'     # block pin, single quotes"]),
        # a missing tail of the path: one line in a block mapping, in its siblings' indentation
        (("environments", "dev", "components", "web", "env", "X"),
         ['+    components: {web: {env: {X: new}}}']),
        # a missing key in a flow mapping: one more item, the others' text kept
        (("environments", "prod", "images", "web", "tag"),
         ["-    images: {api: {digest: 'sha256:" + "1" * 64 + "'}}",
          "+    images: {api: {digest: 'sha256:" + "1" * 64 + "'}, web: {tag: new}}"]),
        (("environments", "staging", "logLevel"),
         ["-  staging: {}", "+  staging: {logLevel: new}"]),
    ],
)  # fmt: skip
def test_set_value_changes_exactly_the_value(path: tuple[str, ...], expected: list[str]) -> None:
    text = ODD.read_text(encoding="utf-8")
    assert changed_lines(text, set_value(text, path, "new")) == expected


def test_set_value_refuses_to_descend_into_a_scalar() -> None:
    text = ODD.read_text(encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"environments.dev.imageTag: is not a mapping"):
        set_value(text, ("environments", "dev", "imageTag", "x"), "1")


def test_served_model_is_found_from_the_serving_arguments() -> None:
    spec = parse_spec((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    served = served_model(spec, "digits", "platform.yaml")
    assert (served.component, served.registry) == ("model-server", "s3://mlp-models/registry")
    with pytest.raises(ReleaseError, match="platform.yaml: no InferenceService .* 'wine'"):
        served_model(spec, "wine", "platform.yaml")


def _version(registry: Path, accuracy: float, decision: str, reason: str) -> None:
    source = registry.parent / "model-source"
    source.mkdir(exist_ok=True)
    (source / "model.keras").write_bytes(b"keras")
    gate = {"decision": decision, "verdict": f"{decision} (test)", "reason": reason}
    metadata = {"metrics": {"test_accuracy": accuracy}, "gate": gate}
    ModelRegistry(registry).register("digits", source, metadata)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """Versions 1 (passed), 2 (gate refused), 3 (passed, accuracy below prod's floor of 0.95)."""
    root = tmp_path / "registry"
    _version(root, 0.98, "promote", "no production model yet")
    _version(root, 0.97, "refused", "accuracy 0.9700 vs production v1 0.9800; worse")
    _version(root, 0.90, "promote", "clears the margin")
    return root


def test_cli_promote_model_edits_one_line_and_rerenders(
    repo: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = repo / "platform.yaml"
    before = spec.read_text(encoding="utf-8")
    capsys.readouterr()
    argv = ["promote-model", "digits", "1", "--env", "prod", "--spec", str(spec)]
    assert main([*argv, "--registry", str(registry)]) == 0
    printed = capsys.readouterr().out.split()
    after = spec.read_text(encoding="utf-8")
    assert changed_lines(before, after) == ['+        env: {MLP_MODEL_VERSION: "1"}']
    # byte-identical except the one inserted line
    assert after.replace('        env: {MLP_MODEL_VERSION: "1"}\n', "", 1) == before
    patch = "overlays/prod/model-server/patches/model-server.inference-service.yaml"
    assert printed == ["platform.yaml", "charts/mlp/values-prod.yaml", patch]
    assert "MLP_MODEL_VERSION" in (repo / patch).read_text(encoding="utf-8")
    assert main(["check", "--spec", str(spec)]) == 0
    # promoting the next version replaces only the value, in its quoting style
    _version(registry, 0.99, "promote", "better")
    assert main([*argv[:2], "4", *argv[3:], "--registry", str(registry)]) == 0
    assert changed_lines(after, spec.read_text(encoding="utf-8")) == [
        '-        env: {MLP_MODEL_VERSION: "1"}',
        '+        env: {MLP_MODEL_VERSION: "4"}',
    ]
    assert main(["check", "--spec", str(spec)]) == 0


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("2", "platform.yaml: environments.prod: digits version 2 may not be served: its gate did "
              "not pass: refused (test) (accuracy 0.9700 vs production v1 0.9800; worse)"),
        ("3", "platform.yaml: environments.prod: digits version 3 may not be served: "
              "test_accuracy 0.9000 is below the floor 0.9500 "
              "(floors: environments.prod.minModelMetrics)"),
        ("9", "platform.yaml: environments.prod: cannot serve it: registry "),
    ],
)  # fmt: skip
def test_cli_promote_model_refuses_and_writes_nothing(
    repo: Path, registry: Path, version: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = repo / "platform.yaml"
    before = snapshot(repo)
    capsys.readouterr()
    argv = ["promote-model", "digits", version, "--env", "prod", "--spec", str(spec)]
    assert main([*argv, "--registry", str(registry)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: " + message), captured.err
    assert "Traceback" not in captured.err and len(captured.err.splitlines()) == 1
    assert snapshot(repo) == before


def test_cli_promote_model_dry_run_and_floors_per_environment(
    repo: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = repo / "platform.yaml"
    before = snapshot(repo)
    capsys.readouterr()
    # dev declares no floors: version 3 (gate passed, 0.90) may serve there
    argv = ["promote-model", "digits", "3", "--env", "dev", "--spec", str(spec), "--dry-run"]
    assert main([*argv, "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- a/platform.yaml\n+++ b/platform.yaml\n")
    assert '+        env: {MLP_MODEL_VERSION: "3"}' in out
    assert snapshot(repo) == before
    # without --registry it reads the component's --registry= (an s3:// URI here, unreachable)
    for bad in (["digits", "1", "--env", "qa"], ["wine", "1", "--env", "prod"]):
        assert main(["promote-model", *bad, "--spec", str(spec), "--registry", str(registry)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: platform.yaml: ") and "Traceback" not in err
    assert main(["promote-model", "digits", "0", "--env", "prod", "--spec", str(spec)]) == 2
    assert snapshot(repo) == before


def test_cli_promote_model_reads_the_serving_components_registry(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --registry: the model server's --registry= (s3:// here); no credentials is a
    message, not a traceback."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(repo / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(repo / "no-config"))
    monkeypatch.setenv("MLP_CACHE_DIR", str(repo / "cache"))
    spec = repo / "platform.yaml"
    before = snapshot(repo)
    capsys.readouterr()
    assert main(["promote-model", "digits", "1", "--env", "prod", "--spec", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: platform.yaml: environments.prod: cannot read the registry s3://mlp-models/registry"
    )
    assert "Traceback" not in err
    assert snapshot(repo) == before
