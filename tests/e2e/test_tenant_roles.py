"""The platform's tenant roles on the real kube-apiserver: what each person may and may not do.

After the environment's output is applied (conftest.applied) and the controller-manager has
aggregated the tenant ClusterRoles, every request is made *as* a tenant's person by
impersonation (`kubectl --as/--as-group`), so the apiserver's own RBAC authorizer decides:

- in the tenant's own namespace, for every role level (view, edit, admin) held by someone in
  platform.yaml: what the level must allow is allowed, and what no tenant role may do is 403:
  delete the `default-deny` NetworkPolicy, bind `cluster-admin`, read a Secret, mint a
  service-account token, create a ServiceAccount, change the quota or the LimitRange;
- across namespaces: one person of each role level is 403 in every other tenant and platform
  namespace, for everything above;
- an outsider (no binding at all) is 403 everywhere.

Creates run with `--dry-run=server` (authorization, admission and validation run; nothing is
stored), so the matrix leaves the cluster as it found it. Whether a KFP run may be created is
the SubjectAccessReview the KFP API server sends (verb `create` on `runs` of
`pipelines.kubeflow.org`), created as a SubjectAccessReview object: the same authorizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from platformgen.builders.tenant import TENANT_ROLE_LEVELS, tenant_role_name
from platformgen.spec.load import load_spec
from platformgen.spec.model import PlatformSpec

from .conftest import Applied
from .kube import ROOT, Cluster
from .test_tenants import pod, wait_until_ready_for_pods

pytestmark = pytest.mark.tools
ONE_ENVIRONMENT = pytest.mark.parametrize("env", ["dev"], indirect=True)
"""The tenant roles and bindings are the same objects in every environment (base/platform):
one environment's cluster answers for all."""

OUTSIDER = ["--as=mallory@example.com", "--as-group=strangers"]
SECRET = "not-theirs"
"""A Secret the test creates (as cluster admin) in each tenant: nobody in the tenant reads it."""


@dataclass(frozen=True)
class Request:
    what: str
    args: tuple[str, ...]
    stdin: str | None = None


def _inference_service(namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "member-model", "namespace": namespace},
            "spec": {
                "predictor": {
                    "containers": [
                        {"name": "kserve-container", "image": "registry.example.com/m:1"}
                    ]
                }
            },
        }
    )


def requests(spec: PlatformSpec, namespace: str) -> dict[str, dict[str, Request]]:
    """Per role level, what it must be allowed (cumulative: edit includes view)."""
    dry = "--dry-run=server"
    view_role = tenant_role_name(spec, "view")
    return {
        "view": {
            "read kfp-launcher": Request("get", ("get", "configmap", "kfp-launcher")),
            "list pods": Request("list", ("get", "pods")),
            "read the NetworkPolicies": Request("get", ("get", "networkpolicy", "default-deny")),
        },
        "edit": {
            "create a Pod": Request("create", ("create", dry, "-f", "-"), pod("p", namespace)),
            "create an InferenceService": Request(
                "create", ("create", dry, "-f", "-"), _inference_service(namespace)
            ),
            "create a KFP run": Request("sar", ("create", "pipelines.kubeflow.org", "runs")),
        },
        "admin": {
            "grant view to a colleague": Request(
                "create",
                (
                    "create",
                    "rolebinding",
                    "colleague",
                    f"--clusterrole={view_role}",
                    "--user=eve",
                    dry,
                ),
            ),
            "create a Secret": Request(
                "create", ("create", "secret", "generic", "new-credentials", dry)
            ),
        },
    }


def forbidden(spec: PlatformSpec) -> dict[str, Request]:
    """What no tenant role may do in its own namespace: undo the isolation, escalate, read
    credentials or act as the platform's service accounts."""
    dry = "--dry-run=server"
    return {
        "delete the default-deny NetworkPolicy": Request(
            "delete", ("delete", "networkpolicy", "default-deny", dry)
        ),
        "bind cluster-admin": Request(
            "create",
            ("create", "rolebinding", "escalate", "--clusterrole=cluster-admin", "--user=x", dry),
        ),
        "read a Secret": Request("get", ("get", "secret", SECRET)),
        "list Secrets": Request("list", ("get", "secrets")),
        "mint a pipeline-runner token": Request("create", ("create", "token", "pipeline-runner")),
        "create a ServiceAccount": Request("create", ("create", "serviceaccount", "x", dry)),
        "raise the quota": Request(
            "patch",
            (
                "patch",
                "resourcequota",
                "tenant-quota",
                "--type=merge",
                "-p",
                '{"spec":{"hard":{"pods":"1000"}}}',
                dry,
            ),
        ),
        "delete the LimitRange": Request("delete", ("delete", "limitrange", "tenant-limits", dry)),
    }


def run(cluster: Cluster, who: list[str], namespace: str, request: Request) -> tuple[bool, str]:
    """(allowed, output) of `request` made as `who` in `namespace`."""
    if request.what == "sar":
        return access_review(cluster, who, namespace, *request.args)
    result = cluster.kubectl(*who, *request.args, "-n", namespace, stdin=request.stdin, check=False)
    output = result.stdout + result.stderr
    if result.returncode == 0:
        return True, output
    # kubectl prints a 403 as "(Forbidden)", or (its create generators) "... is forbidden:".
    denied = "(Forbidden)" in result.stderr or " is forbidden: " in result.stderr
    assert denied, f"{request.args} failed, not with 403:\n{output}"
    return False, output


def access_review(
    cluster: Cluster, who: list[str], namespace: str, verb: str, group: str, resource: str
) -> tuple[bool, str]:
    """The SubjectAccessReview the KFP API server sends before it creates a run (the
    resource is not served by the apiserver, so only this question can be asked of it)."""
    user = next(flag.removeprefix("--as=") for flag in who if flag.startswith("--as="))
    groups = [flag.removeprefix("--as-group=") for flag in who if flag.startswith("--as-group=")]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [*groups, "system:authenticated"],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
            },
        },
    }
    result = cluster.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(review))
    status = json.loads(result.stdout)["status"]
    return bool(status.get("allowed")), json.dumps(status)


def people(spec: PlatformSpec) -> list[tuple[str, str, list[str]]]:
    """(tenant, role level, impersonation flags) for the first user and group of each role."""
    out: list[tuple[str, str, list[str]]] = []
    for name, t in sorted(spec.tenancy.tenants.items()):
        for subjects, role in ((t.owners, t.owner_role), (t.members, t.member_role)):
            if subjects.users:
                out.append((name, role, [f"--as={subjects.users[0]}"]))
            if subjects.groups:
                out.append(
                    (name, role, ["--as=someone@example.com", f"--as-group={subjects.groups[0]}"])
                )
    return out


@pytest.fixture(scope="module")
def spec() -> PlatformSpec:
    return load_spec(ROOT / "platform.yaml")


@pytest.fixture(scope="module")
def tenants_ready(cluster: Cluster, applied: Applied, spec: PlatformSpec) -> list[str]:
    """Every tenant accepts pods, holds a Secret of nobody's, and the tenant roles are
    aggregated (the controller-manager copies the `-rules` roles' rules into them)."""
    for role in TENANT_ROLE_LEVELS:
        name = tenant_role_name(spec, role)

        def empty(name: str = name) -> str | None:
            rules = cluster.get_json("clusterrole", name).get("rules") or []
            return None if rules else "no rules aggregated yet"

        cluster.wait_for(f"ClusterRole {name} to be aggregated", empty, timeout=60)
    for tenant in spec.tenancy.tenants:
        wait_until_ready_for_pods(cluster, tenant)
        cluster.kubectl(
            "create", "secret", "generic", SECRET, "-n", tenant, "--from-literal=k=v", check=False
        )
    return sorted(spec.tenancy.tenants)


def test_platform_yaml_covers_every_role_level(spec: PlatformSpec) -> None:
    assert {role for _, role, _ in people(spec)} == set(TENANT_ROLE_LEVELS)


@ONE_ENVIRONMENT
def test_each_role_may_do_its_work_and_nothing_that_undoes_isolation(
    cluster: Cluster, tenants_ready: list[str], spec: PlatformSpec
) -> None:
    problems = []
    for tenant, role, who in people(spec):
        level = TENANT_ROLE_LEVELS.index(role)
        matrix = requests(spec, tenant)
        for granted_at, batch in matrix.items():
            should = TENANT_ROLE_LEVELS.index(granted_at) <= level
            for what, request in batch.items():
                allowed, output = run(cluster, who, tenant, request)
                if allowed != should:
                    problems.append(
                        f"{role} {who} in {tenant}: {what}: allowed={allowed}\n{output}"
                    )
        for what, request in forbidden(spec).items():
            allowed, output = run(cluster, who, tenant, request)
            if allowed:
                problems.append(f"{role} {who} in {tenant} could {what}:\n{output}")
    assert not problems, "\n".join(problems)


@ONE_ENVIRONMENT
def test_nobody_reaches_across_namespaces_and_outsiders_reach_nothing(
    cluster: Cluster, tenants_ready: list[str], spec: PlatformSpec
) -> None:
    everywhere = [*tenants_ready, *sorted(spec.namespaces)]
    problems = []
    first = {role: (tenant, role, who) for tenant, role, who in reversed(people(spec))}
    for tenant, role, who in [*first.values(), ("(none)", "outsider", OUTSIDER)]:
        for namespace in everywhere:
            if namespace == tenant:
                continue
            batches = requests(spec, namespace)
            for what, request in [
                *(item for batch in batches.values() for item in batch.items()),
                *forbidden(spec).items(),
            ]:
                allowed, output = run(cluster, who, namespace, request)
                if allowed:
                    problems.append(f"{role} {who} of {tenant} in {namespace}: {what}\n{output}")
    assert not problems, "\n".join(problems)
