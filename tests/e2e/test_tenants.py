"""Tenants on the real apiserver: RBAC, quota and LimitRange decide with real requests.

Per environment, after the whole rendered output is applied (conftest.applied), requests are
made as the tenants' people by impersonation (`kubectl --as/--as-group`: the apiserver's own
authorization, not `auth can-i`):
  - a member with an editing role creates a pod and reads config in their tenant namespace;
  - the same person gets 403 Forbidden in the other tenant and in every platform namespace;
  - a viewer can read but gets 403 creating a pod;
  - a pod over the LimitRange's max is rejected by LimitRanger, and a pod over the quota by
    ResourceQuota, each with the apiserver's message;
  - removing a tenant from a copy of the spec and applying with ApplySet prune deletes exactly
    that tenant's objects.
Network isolation between tenants is proven by the reachability gate
(tests/security/test_network_reachability.py).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.spec.load import load_spec
from platformgen.spec.model import PlatformSpec, Tenant

from .conftest import Applied
from .kube import (
    MANAGED_FIELDS_RESOLUTION,
    ROOT,
    Cluster,
    apply,
    changed_objects,
    identity,
    load_documents,
    snapshot,
)
from .test_apply import render_copy

pytestmark = pytest.mark.tools

WRITER_ROLES = {"edit", "admin"}


@pytest.fixture(scope="module")
def spec() -> PlatformSpec:
    return load_spec(ROOT / "platform.yaml")


def person(t: Tenant, role: str) -> list[str]:
    """kubectl impersonation flags for the first user (else group) holding `role` in `t`."""
    for subjects, held in ((t.members, t.member_role), (t.owners, t.owner_role)):
        if held != role:
            continue
        if subjects.users:
            return [f"--as={subjects.users[0]}"]
        if subjects.groups:
            return ["--as=someone@example.com", f"--as-group={subjects.groups[0]}"]
    return []


def pick(spec: PlatformSpec, roles: set[str]) -> tuple[str, list[str]]:
    for name, t in sorted(spec.tenancy.tenants.items()):
        for role in sorted(roles):
            who = person(t, role)
            if who:
                return name, who
    pytest.fail(f"platform.yaml declares no tenant person with a role in {sorted(roles)}")


def pod(name: str, namespace: str, cpu: str | None = None) -> str:
    """A pod that Pod Security `restricted` admits; with `cpu`, requests and limits that."""
    container: dict[str, Any] = {
        "name": "main",
        "image": "registry.example.com/probe:1",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if cpu is not None:
        container["resources"] = {
            "limits": {"cpu": cpu, "memory": "64Mi"},
            "requests": {"cpu": cpu, "memory": "64Mi"},
        }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"automountServiceAccountToken": False, "containers": [container]},
        }
    )


def wait_until_ready_for_pods(cluster: Cluster, namespace: str) -> None:
    """The service-account controller made `default`, the quota controller measured usage."""

    def pending() -> str | None:
        accounts = cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False)
        if accounts.returncode != 0:
            return "no default service account yet"
        quota = cluster.get_json("resourcequota", "tenant-quota", "-n", namespace)
        return None if quota.get("status", {}).get("hard") else "quota status not computed yet"

    cluster.wait_for(f"namespace {namespace} to accept pods", pending, timeout=120)


def test_member_works_in_own_tenant_and_is_forbidden_elsewhere(
    cluster: Cluster, applied: Applied, spec: PlatformSpec
) -> None:
    tenant, who = pick(spec, WRITER_ROLES)
    wait_until_ready_for_pods(cluster, tenant)
    created = cluster.kubectl(*who, "create", "-f", "-", stdin=pod("member-pod", tenant))
    assert "created" in created.stdout
    config = cluster.kubectl(*who, "get", "configmap", "kfp-launcher", "-n", tenant, "-o", "json")
    root = json.loads(config.stdout)["data"]["defaultPipelineRoot"]
    assert tenant in root
    cluster.kubectl("delete", "pod", "member-pod", "-n", tenant, "--wait=false")

    others = [t for t in spec.tenancy.tenants if t != tenant]
    for namespace in [*others, *spec.namespaces]:
        for verb in (["get", "configmaps"], ["create", "-f", "-"]):
            result = cluster.kubectl(
                *who,
                *verb,
                "-n",
                namespace,
                stdin=pod("intruder", namespace) if verb[0] == "create" else None,
                check=False,
            )
            assert result.returncode != 0, f"{who} could {verb[0]} in {namespace}"
            assert "Forbidden" in result.stderr and "(Forbidden)" in result.stderr, result.stderr


def test_viewer_reads_but_cannot_create(
    cluster: Cluster, applied: Applied, spec: PlatformSpec
) -> None:
    tenant, who = pick(spec, {"view"})
    wait_until_ready_for_pods(cluster, tenant)
    cluster.kubectl(*who, "get", "configmap", "kfp-launcher", "-n", tenant)
    result = cluster.kubectl(
        *who, "create", "-f", "-", stdin=pod("viewer-pod", tenant), check=False
    )
    assert result.returncode != 0 and "(Forbidden)" in result.stderr, result.stderr


def test_limit_range_and_quota_reject_oversized_pods(
    cluster: Cluster, applied: Applied, spec: PlatformSpec
) -> None:
    tenant, who = pick(spec, WRITER_ROLES)
    t = spec.tenancy.tenants[tenant]
    wait_until_ready_for_pods(cluster, tenant)
    assert t.limits.max.cpu is not None
    from platformgen.quantity import parse_quantity

    max_cpu = parse_quantity(str(t.limits.max.cpu))
    too_big = cluster.kubectl(
        *who, "create", "-f", "-", stdin=pod("too-big", tenant, f"{max_cpu * 2}"), check=False
    )
    assert too_big.returncode != 0
    assert "maximum cpu usage per Container" in too_big.stderr, too_big.stderr

    # Pods of the LimitRange's max each, until the namespace's requests.cpu quota is spent.
    budget = parse_quantity(str(t.quota.cpu))
    fitting = int(budget // max_cpu)
    names = [f"quota-{i}" for i in range(fitting + 1)]
    try:
        for name in names[:-1]:
            cluster.kubectl(*who, "create", "-f", "-", stdin=pod(name, tenant, f"{max_cpu}"))
        over = cluster.kubectl(
            *who, "create", "-f", "-", stdin=pod(names[-1], tenant, f"{max_cpu}"), check=False
        )
        assert over.returncode != 0
        assert "exceeded quota: tenant-quota" in over.stderr, over.stderr
        assert "requests.cpu" in over.stderr
    finally:
        cluster.kubectl("delete", "pod", *names, "-n", tenant, "--ignore-not-found", "--wait=false")


def without_tenant(spec: dict[str, Any], name: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(spec)
    del trimmed["tenancy"]["tenants"][name]
    return trimmed


def test_prune_removes_exactly_the_removed_tenant(
    cluster: Cluster, applied: Applied, env: str, tmp_path: Path, rendered: str
) -> None:
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    victim = sorted(raw["tenancy"]["tenants"])[-1]
    full = render_copy(raw, tmp_path / "full", env)
    trimmed = render_copy(without_tenant(raw, victim), tmp_path / "trimmed", env)
    old = {identity(d): d for d in load_documents(full)}
    new = {identity(d): d for d in load_documents(trimmed)}
    removed = sorted(set(old) - set(new))
    assert removed and set(new) <= set(old)
    namespaces = {k[2] or k[3] for k in removed}
    assert namespaces == {victim}, f"removing tenant {victim!r} removed objects of {namespaces}"
    # The platform services the tenant used stop admitting it: those policies change, no other.
    rerendered = {k for k in new if new[k] != old[k]}
    assert {k[1] for k in rerendered} <= {"NetworkPolicy"}, rerendered

    try:
        assert not apply(cluster, full)
        kept = [new[k] for k in sorted(new)]
        before = snapshot(cluster, kept)
        time.sleep(MANAGED_FIELDS_RESOLUTION)
        assert not apply(cluster, trimmed)
        left = [
            f"{kind} {namespace}/{name}"
            for group, kind, namespace, name in removed
            if cluster.kubectl(
                "get",
                f"{kind}.{group}" if group else kind,
                name,
                *(["-n", namespace] if namespace else []),
                "--ignore-not-found",
                "-o",
                "name",
            ).stdout.strip()
            and kind != "Namespace"  # namespace deletion finishes asynchronously
        ]
        assert not left, f"prune left the removed tenant's objects: {left}"
        status = cluster.kubectl(
            "get", "namespace", victim, "--ignore-not-found", "-o", "jsonpath={.status.phase}"
        ).stdout
        assert status in ("", "Terminating"), f"namespace {victim} is {status} after prune"
        changed = changed_objects(before, snapshot(cluster, kept))
        assert set(changed) == rerendered, (
            f"the apply changed {sorted(changed)}; the re-render changed {sorted(rerendered)}"
        )
    finally:
        # Put the tenant back once its namespace is really gone (no kubelet: that is quick).
        cluster.wait_for(
            f"namespace {victim} to finish terminating",
            lambda: (
                cluster.kubectl(
                    "get", "namespace", victim, "--ignore-not-found", "-o", "name"
                ).stdout.strip()
                or None
            ),
            timeout=120,
        )
        apply(cluster, rendered)
