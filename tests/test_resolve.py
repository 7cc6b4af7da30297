"""resolve.memoized / remember: what render shares between emitters, and only inside render."""

from __future__ import annotations

from platformgen.builders import build_platform
from platformgen.resolve import dependents, memoized, remember
from platformgen.spec.load import load_spec

from support import SPECS


def test_remember_computes_once_inside_memoized_and_always_outside() -> None:
    calls: list[int] = []
    key = object()

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert remember("x", (key,), compute) == 1
    assert remember("x", (key,), compute) == 2  # outside: no memo
    with memoized():
        assert remember("x", (key,), compute) == 3
        assert remember("x", (key,), compute) == 3
        assert remember("x", (object(),), compute) == 4  # other inputs, other result
    assert remember("x", (key,), compute) == 5


def test_build_platform_is_the_same_memoized_or_not() -> None:
    spec = load_spec(SPECS / "full.yaml")
    plain = {env: build_platform(spec, env) for env in (None, *spec.environments)}
    with memoized():
        first = {env: build_platform(spec, env) for env in (None, *spec.environments)}
        again = build_platform(spec, None)
    assert first == plain
    assert again == plain[None] and again is not first[None]  # callers get their own dict


def test_dependents_lists_each_dependent_once_sorted() -> None:
    spec = load_spec(SPECS / "full.yaml")
    found = dependents(spec)
    for target, names in found.items():
        assert names == sorted(set(names))
        for name in names:
            assert target in spec.components[name].depends_on
    expected = {(target, name) for name, c in spec.components.items() for target in c.depends_on}
    assert {(t, n) for t, names in found.items() for n in names} == expected


def test_collector_paused_restores_the_collector() -> None:
    import gc

    from platformgen.resolve import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
