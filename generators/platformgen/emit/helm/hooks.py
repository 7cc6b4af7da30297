"""`helm test` hooks: per model server (an InferenceService), a Pod that sends the KServe v2
readiness request (`GET /v2/health/ready`) to its predictor, and the NetworkPolicies that let
that one Pod through the namespace's default-deny.

The Pod runs the model server's own image (values `components.<name>.image`, so a test checks
the image it ships with and needs no other registry), with the restricted Pod Security profile
(non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, no token). The
policies are narrow: the test Pod may only reach the model server's pods and the peers the model
server is exposed through (`exposedTo`: KServe's gateway in Knative mode); the model server's
pods admit the test Pod only. Hooks are not release objects: `helm template --skip-tests` and
Argo CD leave them out, `helm install` never creates them, `helm test` does.
"""

from __future__ import annotations

from typing import Any

from platformgen.build.chart import ChartSource
from platformgen.emit.helm.templates import label_knobs
from platformgen.emit.helm.text import Action, write
from platformgen.naming import Manifest

HOOK = "helm.sh/hook"
HOOK_WEIGHT = "helm.sh/hook-weight"
HOOK_DELETE = "helm.sh/hook-delete-policy"
TEST_LABEL = "platformgen.io/helm-test"
"""The label the test Pod carries and its NetworkPolicies select (value: the component)."""
READY_PATH = "/v2/health/ready"
SCRIPT = (
    "import sys, urllib.request\n"
    "url = sys.argv[1]\n"
    "with urllib.request.urlopen(url, timeout=10) as answer:\n"
    "    print(url, answer.status)\n"
    "    sys.exit(0 if answer.status == 200 else 1)\n"
)
"""The request, in the model server image's Python (the image has no curl)."""


def _metadata(name: str, namespace: str, labels: dict[str, str], weight: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": {
            HOOK: "test",
            HOOK_WEIGHT: str(weight),
            HOOK_DELETE: "before-hook-creation",
        },
    }


def _peer(namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(pod_labels)},
    }


def test_hooks(source: ChartSource, built: list[Manifest], chart: str) -> dict[str, str]:
    """`templates/<component>-test-*.yaml` for one charted component: nothing unless it is a
    model server."""
    view = source.view
    servers = [m for m in built if m["kind"] == "InferenceService"]
    policies = [m for m in built if m["kind"] == "NetworkPolicy"]
    if not servers or not policies:
        return {}
    spec, component = view.spec, view.component
    namespace = servers[0]["metadata"]["namespace"]
    name = f"{view.name}-test-ready"
    server_pods = policies[0]["spec"]["podSelector"]["matchLabels"]
    labels = {
        **servers[0]["metadata"]["labels"],
        "app.kubernetes.io/name": name,
        TEST_LABEL: view.name,
    }
    test_pod = {TEST_LABEL: view.name}
    url = f"http://{view.name}-predictor.{namespace}.svc.cluster.local{READY_PATH}"
    user = spec.defaults.run_as_user
    pod: Manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(name, namespace, labels, 1),
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": user,
                "runAsGroup": user,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "ready",
                    "image": Action(f'include "{chart}.image" (index $.Values.components'
                                    f' "{view.name}").image'),
                    "command": ["python", "-c", SCRIPT, url],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "16Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi", "ephemeral-storage": "16Mi"},
                    },
                }
            ],
        },
    }  # fmt: skip
    ways_in = [
        _peer(spec.endpoints[peer].namespace or namespace, spec.endpoints[peer].pod_labels)
        for peer in component.exposed_to
        if peer in spec.endpoints and spec.endpoints[peer].namespace is not None
    ]
    egress: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{name}-egress", namespace, labels, 0),
        "spec": {
            "podSelector": {"matchLabels": test_pod},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": dict(server_pods)}}, *ways_in]}],
        },
    }
    ingress: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{name}-ingress", namespace, labels, 0),
        "spec": {
            "podSelector": {"matchLabels": dict(server_pods)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": test_pod}}]}],
        },
    }
    for m in (egress, ingress, pod):
        label_knobs(m, chart)
    return {
        f"templates/{view.name}-test-network-policy-egress.yaml": write(egress),
        f"templates/{view.name}-test-network-policy-ingress.yaml": write(ingress),
        f"templates/{view.name}-test-pod.yaml": write(pod),
    }
