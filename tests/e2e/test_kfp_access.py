"""The Jobs that talk to the Kubeflow Pipelines API are authenticated and authorized the way
KFP's multi-user mode does it, decided by the real apiserver.

KFP's API server (backend/src/apiserver) authenticates a request's bearer token with a
TokenReview for the audience `pipelines.kubeflow.org`, then authorizes each call with a
SubjectAccessReview on `pipelines.kubeflow.org` resources (pipelines, experiments, runs, and
`jobs` for recurring runs) in the namespace. Per environment, after the rendered output is
applied (conftest.applied), for every applied Job that mounts a KFP token:
  - its pod does not mount the Kubernetes API token, and its projected token has the audience
    KFP checks, at the path the container is told (KF_PIPELINES_SA_TOKEN_PATH);
  - a token the apiserver issues for that ServiceAccount and that audience passes a TokenReview
    for KFP's audience (and one for the default audience does not);
  - SubjectAccessReviews for that ServiceAccount allow exactly the calls its command makes
    (`mlp-pipeline schedule` or `submit`), and deny the other command's writes, deletes of
    pipelines, and the same calls in another namespace.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Applied
from .kube import Cluster

pytestmark = pytest.mark.tools

KFP_AUDIENCE = "pipelines.kubeflow.org"
"""What KFP's authenticator asks the TokenReview for (common.DefaultTokenReviewAudience)."""
KFP_GROUP, KFP_VERSION = "pipelines.kubeflow.org", "v1beta1"

CALLS = {
    "schedule": {
        ("pipelines", "list"),
        ("pipelines", "get"),
        ("experiments", "list"),
        ("experiments", "create"),
        ("jobs", "list"),
        ("jobs", "create"),
        ("jobs", "disable"),
        ("jobs", "delete"),
    },
    "submit": {
        ("pipelines", "list"),
        ("pipelines", "get"),
        ("experiments", "list"),
        ("experiments", "create"),
        ("runs", "create"),
        ("runs", "get"),
    },
}
"""(resource, verb) of each call the command makes through kfp.Client (mlp_common.kfp_runs)."""
NEVER = {("pipelines", "delete"), ("pipelines", "create"), ("experiments", "delete")}


def kfp_jobs(applied: Applied) -> list[dict[str, Any]]:
    return [
        d
        for d in applied.documents
        if d["kind"] == "Job"
        and any(v.get("projected") for v in d["spec"]["template"]["spec"].get("volumes", []))
    ]


def allowed(cluster: Cluster, user: str, namespace: str, resource: str, verb: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {
                "namespace": namespace,
                "group": KFP_GROUP,
                "version": KFP_VERSION,
                "resource": resource,
                "verb": verb,
            },
        },
    }
    out = cluster.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return bool(json.loads(out.stdout)["status"].get("allowed"))


def token_review(cluster: Cluster, token: str, audience: str) -> dict[str, Any]:
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": [audience]},
    }
    out = cluster.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return dict(json.loads(out.stdout)["status"])


def test_kfp_jobs_authenticate_with_the_audience_kfp_checks(
    cluster: Cluster, applied: Applied
) -> None:
    jobs = kfp_jobs(applied)
    assert {j["metadata"]["name"].rsplit("-", 1)[0] for j in jobs} == {
        "retrain",
        "initial-training",
    }
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        namespace, account = job["metadata"]["namespace"], pod["serviceAccountName"]
        assert pod["automountServiceAccountToken"] is False
        (volume,) = [v for v in pod["volumes"] if v.get("projected")]
        (source,) = volume["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == KFP_AUDIENCE
        (container,) = pod["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        env = {e["name"]: e.get("value") for e in container["env"]}
        path = f"{mount['mountPath']}/{source['serviceAccountToken']['path']}"
        assert env["KF_PIPELINES_SA_TOKEN_PATH"] == path

        token = cluster.kubectl(
            "create", "token", account, "-n", namespace, f"--audience={KFP_AUDIENCE}"
        ).stdout.strip()
        status = token_review(cluster, token, KFP_AUDIENCE)
        assert status.get("authenticated") is True, status
        assert status["user"]["username"] == f"system:serviceaccount:{namespace}:{account}"
        default = cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip()
        assert not token_review(cluster, default, KFP_AUDIENCE).get("authenticated")


def test_kfp_jobs_may_make_exactly_their_commands_calls(cluster: Cluster, applied: Applied) -> None:
    for job in kfp_jobs(applied):
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["args"][0]
        other = next(c for c in CALLS if c != command)
        namespace = next(
            a.partition("=")[2] for a in container["args"] if a.startswith("--namespace=")
        )
        user = f"system:serviceaccount:{job['metadata']['namespace']}:{pod['serviceAccountName']}"
        for resource, verb in sorted(CALLS[command]):
            assert allowed(cluster, user, namespace, resource, verb), (user, resource, verb)
        forbidden = (CALLS[other] - CALLS[command]) | NEVER
        for resource, verb in sorted(forbidden):
            assert not allowed(cluster, user, namespace, resource, verb), (user, resource, verb)
        for resource, verb in sorted(CALLS[command]):
            assert not allowed(cluster, user, "ml-serving", resource, verb), (resource, verb)
