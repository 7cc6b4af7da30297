"""Golden trees: each fixture spec renders exactly tests/golden/<case>/ (refresh: make golden)."""

from __future__ import annotations

import difflib

import pytest

from platformgen.render import render
from platformgen.spec.load import load_spec

from support import GOLDEN, SPEC_CASES, SPECS, snapshot


@pytest.mark.parametrize("case", SPEC_CASES)
def test_render_matches_golden_tree(case: str) -> None:
    rendered = {
        path: text.encode() for path, text in render(load_spec(SPECS / f"{case}.yaml")).items()
    }
    golden = snapshot(GOLDEN / case)
    problems = []
    for path in sorted(set(rendered) | set(golden)):
        if path not in golden:
            problems.append(f"missing from golden: {path}")
        elif path not in rendered:
            problems.append(f"golden has extra file: {path}")
        elif rendered[path] != golden[path]:
            diff = difflib.unified_diff(
                golden[path].decode().splitlines(keepends=True),
                rendered[path].decode().splitlines(keepends=True),
                fromfile=f"golden/{case}/{path}",
                tofile=f"rendered/{path}",
            )
            problems.append("".join(diff))
    assert not problems, "golden tree differs (run `make golden` if intended):\n" + "\n".join(
        problems
    )


def test_golden_cases_exist() -> None:
    assert set(SPEC_CASES) == {"minimal", "full", "two-envs"}
    assert all((GOLDEN / case).is_dir() for case in SPEC_CASES)
