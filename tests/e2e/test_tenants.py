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
from .kube import restore as restore_render
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
        restore_render(cluster, rendered)


def runner_pod(name: str, namespace: str, workflow: str, image: str) -> dict[str, Any]:
    """A KFP v2 step's pod as Argo creates it: the pipeline runner's account, its workflow's
    label, the step's pinned image in the `main` container."""
    document = json.loads(pod(name, namespace))
    document["metadata"]["labels"] = {"workflows.argoproj.io/workflow": workflow}
    document["spec"]["serviceAccountName"] = "pipeline-runner"
    document["spec"]["containers"][0]["image"] = image
    return document


def test_pipeline_runner_reads_the_image_digests_of_its_run(
    cluster: Cluster, applied: Applied, spec: PlatformSpec, tmp_path: Path
) -> None:
    """The register step's read (mlp_common.run_images) with the generated pipeline-runner
    Role deciding: its own pod, then its run's pods by label. This control plane has no
    kubelet, so the test writes what a kubelet reports after a pull (`status.containerStatuses`
    through the status subresource); the requests and the authorization are the apiserver's."""
    from mlp_common.run_images import KubernetesApi, run_image_digests

    tenant, other = sorted(spec.tenancy.tenants)[:2]
    wait_until_ready_for_pods(cluster, tenant)
    pins = {"train": "registry.example.com/mlp/train-python:1", "ingest": "i.example/ingest:1"}
    ran = "registry.example.com/mlp/train-python@sha256:" + "a" * 64
    pods = [
        runner_pod("run-a-train", tenant, "run-a", pins["train"]),
        runner_pod("run-a-register", tenant, "run-a", "registry.example.com/mlp/register:1"),
        runner_pod("run-b-ingest", tenant, "run-b", pins["ingest"]),  # another run's
    ]
    for document in pods:
        cluster.kubectl("create", "-f", "-", stdin=json.dumps(document))
        container = document["spec"]["containers"][0]
        reported = f"{container['image'].rsplit(':', 1)[0]}@sha256:" + "a" * 64
        status = {
            "containerStatuses": [
                {"name": "main", "image": container["image"], "imageID": reported,
                 "ready": False, "restartCount": 0, "state": {"waiting": {}}}
            ]
        }  # fmt: skip
        cluster.kubectl("patch", "pod", document["metadata"]["name"], "-n", tenant,
                        "--subresource=status", "--type=merge", "-p",
                        json.dumps({"status": status}))  # fmt: skip
    config = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    server = config["clusters"][0]["cluster"]
    ca = server.get("certificate-authority-data")
    account = tmp_path / "account"
    account.mkdir()
    if ca:
        import base64

        (account / "ca.crt").write_bytes(base64.b64decode(ca))
    else:
        (account / "ca.crt").write_bytes(Path(server["certificate-authority"]).read_bytes())

    def read_as(namespace: str) -> dict[str, Any]:
        token = cluster.kubectl("create", "token", "pipeline-runner", "-n", namespace).stdout
        (account / "token").write_text(token.strip())
        api = KubernetesApi(server["server"], account)
        return run_image_digests(pins, api, "run-a-register", tenant)

    record = read_as(tenant)
    assert record == {
        "source": "pod status",
        "namespace": tenant,
        "workflow": "run-a",
        "digests": {"ingest": None, "train": ran},  # run-b's ingest pod is not this run's
    }
    denied = read_as(other)  # another tenant's runner may not read this tenant's pods
    assert denied["source"] == "unavailable" and "403" in denied["reason"], denied
    for document in pods:
        cluster.kubectl("delete", "pod", document["metadata"]["name"], "-n", tenant, "--wait=false")
