"""Minimal patches: identity plus what changed, merged by name where Kubernetes merges by name."""

from __future__ import annotations

import pytest

from platformgen.environments import compute_overlay, object_patch


def deployment(
    replicas: int, memory: str, level: str = "INFO", first: str = "1"
) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "img:1",
                            "env": [{"name": "A", "value": first}, {"name": "LOG", "value": level}],
                            "resources": {"limits": {"memory": memory}},
                        }
                    ]
                }
            },
        },
    }


def test_identical_objects_need_no_patch() -> None:
    assert object_patch(deployment(1, "1Gi"), deployment(1, "1Gi")) is None


def test_patch_has_identity_and_only_changed_fields() -> None:
    patch = object_patch(deployment(1, "1Gi", first="B"), deployment(3, "1Gi", first="C"))
    assert patch == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "ns"},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {"containers": [{"name": "api", "env": [{"name": "A", "value": "C"}]}]}
            },
        },
    }


def test_patch_keeps_list_order_by_naming_unchanged_items() -> None:
    """kustomize puts a patch's list items first: a changed item that is not first in the
    list would move to the front (tests/test_equivalence.py caught it), so the patch names
    the unchanged items before it, and only by name."""
    patch = object_patch(deployment(1, "1Gi"), deployment(3, "1Gi", level="DEBUG"))
    assert patch is not None
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {"name": "api", "env": [{"name": "A"}, {"name": "LOG", "value": "DEBUG"}]}
    ]


def test_new_objects_are_added_not_patched() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "ns"},
    }
    overlay = compute_overlay([deployment(1, "1Gi")], [deployment(1, "2Gi"), hpa])
    assert overlay.added == [hpa]
    assert len(overlay.patches) == 1


def test_removing_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot remove base objects"):
        compute_overlay([deployment(1, "1Gi")], [])
