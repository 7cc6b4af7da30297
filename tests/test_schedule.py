"""`make test` hands out its groups longest first (tests/conftest.py): pytest-xdist's own
reordering by test count is off, and the measured seconds rank the groups."""

from __future__ import annotations

import pytest
from conftest import SLOWEST_FIRST, expected_seconds, longest_first


def test_xdist_keeps_our_order(pytestconfig: pytest.Config) -> None:
    assert getattr(pytestconfig.option, "loadscopereorder", False) is False


def test_measured_seconds_rank_first_then_the_prefix_guess() -> None:
    measured = {"tests/test_long.py": 900.0, "node": 5.0}
    assert expected_seconds("tests/test_long.py", measured) == 900.0
    assert expected_seconds("node", measured) == 5.0  # measured beats the guess
    assert expected_seconds("cluster-dev", {}) == SLOWEST_FIRST["cluster-"]
    assert expected_seconds("tests/test_new.py", {}) == 1.0


def test_longest_groups_first_and_each_group_in_its_order() -> None:
    groups = ["tests/test_a.py", "node", "tests/e2e/test_x.py", "node", "tests/test_a.py"]
    order = longest_first(groups, {"tests/e2e/test_x.py": 700.0})
    assert [groups[i] for i in order] == [
        "tests/e2e/test_x.py",
        "node",
        "node",
        "tests/test_a.py",
        "tests/test_a.py",
    ]
    assert order == [2, 1, 3, 0, 4]


def test_the_session_hands_out_longest_groups_first(request: pytest.FixtureRequest) -> None:
    """Groups in the order of their first test (what xdist hands out) never get longer."""
    from conftest import _measured

    first_seen: dict[str, None] = {}
    for item in request.session.items:
        group = dict(item.user_properties)["xdist_group"]
        first_seen.setdefault(group, None)
    measured = _measured()
    seconds = [expected_seconds(group, measured) for group in first_seen]
    assert seconds == sorted(seconds, reverse=True)
