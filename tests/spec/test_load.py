"""Invalid specs: exit 1, a message naming the spec path, and no file touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platformgen.cli import main
from platformgen.errors import SpecError
from platformgen.spec.load import load_spec, parse_spec

from support import FIXTURES, SPECS, snapshot

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect:").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    ]


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 15


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_spec_is_rejected_without_writing(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "repo"
    assert main(["render", "--spec", str(SPECS / "minimal.yaml"), "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    spec = tmp_path / "platform.yaml"
    shutil.copyfile(case, spec)

    code = main(["render", "--spec", str(spec), "--out", str(out)])

    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    for expected in expectations(case):
        assert f"error: platform.yaml: {expected}" in err, err
    assert snapshot(out) == before


def test_all_problems_are_reported_at_once() -> None:
    text = (FIXTURES / "invalid" / "many-errors.yaml").read_text()
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    assert len(raised.value.problems) == 2


def test_every_field_error_is_collected() -> None:
    text = """
platform: {name: x, partOf: y}
namespaces: {a: {}}
components:
  one: {kind: Deployment, namespace: a, role: r, image: i, ports: [{name: h, port: 0}]}
  two: {kind: Deployment, namespace: a, role: r, image: i, bogus: true}
environments: {dev: {}}
"""
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    assert raised.value.problems == [
        "platform.yaml: components.one.ports[0].port: must be 1-65535",
        "platform.yaml: components.two.bogus: unknown key",
    ]


def test_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--spec", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_fixture_specs_load() -> None:
    spec = load_spec(SPECS / "full.yaml")
    assert spec.defaults.run_as_user == 20001
    assert spec.components["retrain"].depends_on == ("kfp",)
