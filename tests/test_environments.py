"""Minimal patches: identity plus what changed, merged by name where Kubernetes merges by name."""

from __future__ import annotations

import pytest

from platformgen.environments import compute_overlay, object_patch


def deployment(replicas: int, memory: str, level: str = "INFO") -> dict[str, object]:
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
                            "env": [{"name": "A", "value": "1"}, {"name": "LOG", "value": level}],
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
    patch = object_patch(deployment(1, "1Gi"), deployment(3, "1Gi", level="DEBUG"))
    assert patch == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "ns"},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [{"name": "api", "env": [{"name": "LOG", "value": "DEBUG"}]}]
                }
            },
        },
    }


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
