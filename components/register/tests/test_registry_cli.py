"""``mlp-registry promote`` runs the registry's promotion check (no training: fake versions)."""

from pathlib import Path

import pytest
from mlp_common.registry import ModelRegistry
from mlp_register.registry_cli import main


def version(registry: Path, decision: str) -> None:
    source = registry.parent / "source"
    source.mkdir(exist_ok=True)
    (source / "model.keras").write_bytes(b"keras")
    gate = {"decision": decision, "verdict": f"{decision} (test)", "reason": "the numbers"}
    ModelRegistry(registry).register("digits", source, {"gate": gate, "metrics": {}})


def test_promote_refuses_a_version_whose_gate_did_not_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry"
    version(registry, "promote")
    version(registry, "candidate")
    base = ["--registry", str(registry), "promote", "digits"]
    assert main([*base, "1"]) == 0
    assert main([*base, "2"]) == 1
    assert capsys.readouterr().err == (
        "registry: model 'digits' version 2 may not be promoted: its gate did not pass: "
        "candidate (test) (the numbers)\n"
    )
    assert ModelRegistry(registry).pointer("digits", "production") == 1
    assert main([*base, "2", "--force", "--reason", "hotfix"]) == 0
    log = ModelRegistry(registry).promotions("digits")
    assert log[-1]["reason"] == "hotfix (forced past the promotion check)"
