"""Releases as spec edits: `set-image`, `promote` and `promote-model` change exactly one value
of the spec, keeping every comment, blank line, key order and quote, and re-render the trees;
`promote-model` first checks the registry (gate passed, the environment's metric floors)."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from mlp_common.registry import ModelRegistry

from platformgen.cli import main
from platformgen.release import (
    ReleaseError,
    parse_reference,
    promote,
    remove_value,
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


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # a block entry: its line goes, the comment above the next key stays
        (("environments", "dev", "logLevel"), ["-    logLevel: debug"]),
        # a block entry whose value is a block mapping: all of its lines
        (("environments", "dev", "images", "web"),
         ["-      web:", "-        tag: 'web-1'     # block pin, single quotes"]),
        # a flow entry: the item goes, the others' text stays
        (("environments", "prod", "images", "api"),
         ["-    images: {api: {digest: 'sha256:" + "1" * 64 + "'}}", "+    images: {}"]),
        # the only entry of a block mapping: the mapping is left empty, in flow style
        (("environments", "dev", "images", "web", "tag"),
         ["-      web:", "-        tag: 'web-1'     # block pin, single quotes", "+      web: {}"]),
    ],
)  # fmt: skip
def test_remove_value_removes_exactly_the_entry(path: tuple[str, ...], expected: list[str]) -> None:
    text = ODD.read_text(encoding="utf-8")
    assert changed_lines(text, remove_value(text, path)) == expected


def test_served_model_is_found_from_the_typed_model() -> None:
    spec = parse_spec((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    served = served_model(spec, "digits", "platform.yaml")
    assert (served.component, served.registry) == ("model-server", "s3://mlp-models/registry")
    assert served.production_environment == "prod"
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
    """Versions 1 (passed, production), 2 (gate refused), 3 (passed, accuracy below prod's
    floor of 0.95), 4 and 5 (passed)."""
    root = tmp_path / "registry"
    _version(root, 0.98, "promote", "no production model yet")
    _version(root, 0.97, "refused", "accuracy 0.9700 vs production v1 0.9800; worse")
    _version(root, 0.90, "promote", "clears the margin")
    _version(root, 0.99, "promote", "better than v1")
    _version(root, 0.99, "promote", "better than v1")
    ModelRegistry(root).promote("digits", 1, expected=None)
    return root


PATCH = "overlays/prod/model-server/patches/model-server.inference-service.yaml"


def _served(repo: Path) -> dict[str, object]:
    """What the rendered prod InferenceService says it serves."""
    patch = yaml.safe_load((repo / PATCH).read_text(encoding="utf-8"))
    predictor = patch["spec"]["predictor"]
    (container,) = predictor["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return {
        "version": env["MLP_MODEL_VERSION"],
        "canaryTrafficPercent": predictor.get("canaryTrafficPercent"),
        "annotations": {k: v for k, v in patch["metadata"]["annotations"].items() if "model" in k},
    }


def _production(registry: Path) -> int | None:
    return ModelRegistry(registry).pointer("digits", "production")


def test_cli_promotion_path_candidate_canary_production(
    repo: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """candidate -> canary -> production, then a rollback, each one edit of platform.yaml and a
    re-render; the registry's production pointer moves only on the full promotion."""
    spec = repo / "platform.yaml"
    prod = ["--env", "prod", "--spec", str(spec), "--registry", str(registry)]
    stable = spec.read_text(encoding="utf-8")
    assert _served(repo) == {
        "version": "1",
        "canaryTrafficPercent": None,
        "annotations": {"platformgen.io/stable-model": "digits version 1"},
    }

    # 1. canary: version 4 takes 10% (the default); the previous revision (version 1) the rest
    assert main(["promote-model", "digits", "4", "--canary", *prod]) == 0
    canary = spec.read_text(encoding="utf-8")
    assert changed_lines(stable, canary) == ["+        canary: {trafficPercent: 10, version: 4}"]
    assert _served(repo) == {
        "version": "4",
        "canaryTrafficPercent": 10,
        "annotations": {
            "platformgen.io/stable-model": "digits version 1",
            "platformgen.io/canary-model": "digits version 4 takes 10% of requests",
        },
    }
    assert _production(registry) == 1
    assert main(["check", "--spec", str(spec)]) == 0

    # 2. more traffic to the same canary: one number changes
    assert main(["promote-model", "digits", "4", "--canary", "--traffic", "50", *prod]) == 0
    ramped = spec.read_text(encoding="utf-8")
    assert changed_lines(canary, ramped) == [
        "-        canary: {trafficPercent: 10, version: 4}",
        "+        canary: {trafficPercent: 50, version: 4}",
    ]
    assert _production(registry) == 1

    # 3. full promotion: the stable version becomes 4, the canary goes, and the registry's
    # production pointer moves 1 -> 4 (compare-and-swap), so servers following it follow
    assert main(["promote-model", "digits", "4", *prod]) == 0
    promoted = spec.read_text(encoding="utf-8")
    assert changed_lines(ramped, promoted) == [
        "-        model: {version: 1}",
        "+        model: {version: 4}",
        "-        canary: {trafficPercent: 50, version: 4}",
    ]
    assert _served(repo) == {
        "version": "4",
        "canaryTrafficPercent": None,
        "annotations": {"platformgen.io/stable-model": "digits version 4"},
    }
    assert _production(registry) == 4
    last = ModelRegistry(registry).promotions("digits")[-1]
    assert (last["from"], last["to"]) == (1, 4)
    assert main(["check", "--spec", str(spec)]) == 0

    # 4. rollback: promote the old version again (gate-checked, pointer 4 -> 1)
    assert main(["promote-model", "digits", "1", *prod]) == 0
    assert spec.read_text(encoding="utf-8") == stable
    assert _production(registry) == 1

    # 5. a canary aborted: the spec is byte-for-byte what it was, the registry untouched
    assert main(["promote-model", "digits", "5", "--canary", *prod]) == 0
    assert main(["promote-model", "digits", "--abort-canary", *prod]) == 0
    assert spec.read_text(encoding="utf-8") == stable
    assert _production(registry) == 1
    assert main(["check", "--spec", str(spec)]) == 0


def test_cli_promotion_outside_the_production_environment_keeps_the_pointer(
    repo: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dev declares no floors and is not `model.productionEnvironment`: version 3 may serve
    there, pinned in dev only; dry runs change nothing."""
    spec = repo / "platform.yaml"
    before = snapshot(repo)
    dev = ["--env", "dev", "--spec", str(spec), "--registry", str(registry)]
    capsys.readouterr()
    assert main(["promote-model", "digits", "3", *dev, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- a/platform.yaml\n+++ b/platform.yaml\n")
    assert "+        model: {version: 3}\n" in out
    assert snapshot(repo) == before
    assert main(["promote-model", "digits", "4", "--canary", *dev[:-2], "--dry-run"]) == 1
    assert "a canary needs the stable version pinned" in capsys.readouterr().err
    assert main(["promote-model", "digits", "3", *dev]) == 0
    assert _production(registry) == 1
    assert main(["promote-model", "digits", "0", "--env", "prod", "--spec", str(spec)]) == 2


@pytest.mark.parametrize(
    ("setup", "argv", "message"),
    [
        ([], ["2", "--canary"],
         "platform.yaml: environments.prod: digits version 2 may not be served: its gate did "
         "not pass: refused (test) (accuracy 0.9700 vs production v1 0.9800; worse)"),
        ([], ["3"],
         "platform.yaml: environments.prod: digits version 3 may not be served: test_accuracy "
         "0.9000 is below the floor 0.9500 (floors: environments.prod.minModelMetrics)"),
        ([], ["9", "--canary"],
         "platform.yaml: environments.prod: cannot serve it: registry "),
        ([], ["1", "--canary"],
         "platform.yaml: environments.prod.components.model-server: version 1 is the stable "
         "version already"),
        ([], ["1"],
         "platform.yaml: environments.prod.components.model-server: already serves digits "
         "version 1"),
        ([], ["--abort-canary"],
         "platform.yaml: environments.prod.components.model-server: no canary in flight to "
         "abort (serving version 1)"),
        ([], ["4", "--canary", "--traffic", "100"],
         "--traffic 100: a canary gets 1-99 percent of the traffic"),
        ([], ["4", "--traffic", "20"], "promote-model: --traffic sets the canary's share"),
        ([], [], "promote-model: give the version to promote (or --abort-canary)"),
        (["4", "--canary"], ["5", "--canary"],
         "platform.yaml: environments.prod.components.model-server: canary version 4 is in "
         "flight: promote it (platformgen promote-model digits 4 --env prod) or abort it "
         "(--abort-canary) before starting version 5"),
        (["4", "--canary"], ["5"],
         "platform.yaml: environments.prod.components.model-server: canary version 4 is in "
         "flight"),
        (["4", "--canary"], ["5", "--abort-canary"],
         "platform.yaml: environments.prod.components.model-server: the canary in flight serves "
         "version 4, not 5"),
    ],
)  # fmt: skip
def test_cli_promote_model_refuses_and_writes_nothing(
    repo: Path,
    registry: Path,
    setup: list[str],
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = repo / "platform.yaml"
    prod = ["--env", "prod", "--spec", str(spec), "--registry", str(registry)]
    if setup:
        assert main(["promote-model", "digits", *setup, *prod]) == 0
    before = snapshot(repo)
    promotions = ModelRegistry(registry).promotions("digits")
    capsys.readouterr()
    assert main(["promote-model", "digits", *argv, *prod]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: " + message), captured.err
    assert "Traceback" not in captured.err and len(captured.err.splitlines()) == 1
    assert snapshot(repo) == before
    assert ModelRegistry(registry).promotions("digits") == promotions


def test_cli_full_promotion_loses_a_race_and_writes_nothing(
    repo: Path, registry: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another promotion moves the registry's production pointer after promote-model read it:
    the compare-and-swap refuses, and neither the registry nor platform.yaml changes."""
    from platformgen import release

    real = release.check_registry

    def then_someone_else_promotes(*args: object, **kwargs: object) -> release.RegistryCheck:
        check = real(*args, **kwargs)  # type: ignore[arg-type]
        ModelRegistry(registry).promote("digits", 5, expected=1, reason="the other run")
        return check

    monkeypatch.setattr(release, "check_registry", then_someone_else_promotes)
    spec = repo / "platform.yaml"
    before = snapshot(repo)
    capsys.readouterr()
    argv = ["promote-model", "digits", "4", "--env", "prod", "--spec", str(spec)]
    assert main([*argv, "--registry", str(registry)]) == 1
    err = capsys.readouterr().err
    assert "production moved: expected version 1, found version 5" in err, err
    assert "platform.yaml was not changed" in err and "Traceback" not in err
    assert snapshot(repo) == before
    assert _production(registry) == 5


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
    assert main(["promote-model", "digits", "2", "--env", "prod", "--spec", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: platform.yaml: environments.prod: cannot read the registry s3://mlp-models/registry"
    )
    assert "Traceback" not in err
    assert snapshot(repo) == before
