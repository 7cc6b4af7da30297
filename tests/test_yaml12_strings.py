"""Strings that a YAML 1.2 reader (kubectl, kustomize, Argo CD are Go) would read as numbers
are written quoted, although PyYAML (YAML 1.1) would leave some of them plain: an env value
`1e3` must reach the apiserver as the string it is."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from platformgen.serialize import to_yaml

from support import tool


@pytest.mark.parametrize("value", ["1e3", "0o17", "0x1F", ".inf", "-.Inf", ".nan", "1.", "+1"])
def test_yaml12_numbers_stay_strings(value: str) -> None:
    text = to_yaml({"data": {"v": value}}, header=False)
    assert f"v: '{value}'" in text, text
    assert yaml.safe_load(text) == {"data": {"v": value}}


@pytest.mark.tools
def test_kustomize_keeps_them_strings(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1e3", "b": "0o17"},
    }
    (folder / "c.yaml").write_text(to_yaml(config_map))
    (folder / "kustomization.yaml").write_text("resources: [c.yaml]\n")
    built = subprocess.run(
        [str(tool("kustomize")), "build", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    assert "a: '1e3'" in built or 'a: "1e3"' in built, built
