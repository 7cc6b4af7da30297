"""Kind traits (platformgen.kinds) cover every kind the spec accepts, and name only real
ComponentOverride fields: a new kind is one entry there, checked here."""

from __future__ import annotations

from typing import get_args

from platformgen.emit.helm import KNOB_MODELS
from platformgen.kinds import (
    COMMON_TUNABLES,
    KINDS,
    OPTIONAL_TUNABLES,
    merges_lists_by_key,
    tunables,
)
from platformgen.spec.model import Component, ComponentOverride


def test_every_component_kind_has_workload_traits() -> None:
    kinds = set(get_args(Component.model_fields["kind"].annotation))
    assert kinds == {kind for kind, t in KINDS.items() if t.workload}


def test_tunables_are_component_override_fields() -> None:
    fields = {info.alias or name for name, info in ComponentOverride.model_fields.items()}
    for kind in KINDS:
        assert tunables(kind) <= fields, kind
        assert set(KINDS[kind].fields) <= tunables(kind), kind
    assert COMMON_TUNABLES <= fields
    assert set(OPTIONAL_TUNABLES) == set(KNOB_MODELS)


def test_kinds_that_are_not_workloads_take_no_tunables() -> None:
    assert tunables("ConfigMap") == frozenset()
    assert tunables("Job") == COMMON_TUNABLES


def test_built_in_kinds_merge_lists_by_key_custom_resources_replace_them() -> None:
    assert merges_lists_by_key("apps/v1")
    assert merges_lists_by_key("v1")
    assert merges_lists_by_key("networking.k8s.io/v1")
    assert not merges_lists_by_key("serving.kserve.io/v1beta1")
