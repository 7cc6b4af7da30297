"""resolve and build: each environment resolved and built once per render, and what the
views carry."""

from __future__ import annotations

import pytest

import platformgen.build
from platformgen.builders import build_platform, build_platform_waived
from platformgen.render import render
from platformgen.resolve import dependents, resolve
from platformgen.spec.load import load_spec

from support import SPECS


def test_render_builds_each_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build once, emit many: one build_platform_waived per environment (and base) in a
    render; every emitter reads that build."""
    spec = load_spec(SPECS / "full.yaml")
    calls: list[str | None] = []

    def counting(spec_: object, environment: str | None, *args: object) -> object:
        calls.append(environment)
        return build_platform_waived(spec, environment, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(platformgen.build, "build_platform_waived", counting)
    render(spec)
    assert sorted(calls, key=str) == sorted([None, *spec.environments], key=str)


def test_build_holds_what_build_platform_builds() -> None:
    spec = load_spec(SPECS / "full.yaml")
    built = platformgen.build.build(spec)
    assert dict(built.base.groups) == build_platform(spec, None)
    for environment, environment_build in built.environments.items():
        assert dict(environment_build.groups) == build_platform(spec, environment)
        assert [v.name for v in environment_build.views] == sorted(spec.components)


def test_dependents_lists_each_dependent_once_sorted() -> None:
    spec = load_spec(SPECS / "full.yaml")
    found = dependents(spec)
    for target, names in found.items():
        assert names == sorted(set(names))
        for name in names:
            assert target in spec.components[name].depends_on
    expected = {(target, name) for name, c in spec.components.items() for target in c.depends_on}
    assert {(t, n) for t, names in found.items() for n in names} == expected
    for view in resolve(spec, None):
        assert list(view.dependents) == found.get(view.name, [])
