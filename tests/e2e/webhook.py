"""A mutating admission webhook that does to a PipelineVersion what Kubeflow Pipelines' does.

KFP's PipelineVersion defaulting webhook (backend/src/apiserver/webhook/
pipelineversion_webhook.go, `Default`) looks up the Pipeline named by `spec.pipelineName`,
refuses the object if there is none, and adds:
- the labels `pipelines.kubeflow.org/pipeline-id: <Pipeline UID>` and
  `pipelines.kubeflow.org/pipeline: <Pipeline name>`;
- an ownerReference to that Pipeline (`blockOwnerDeletion: true`).
KFP itself cannot run here (its apiserver needs a database and object store), so this server
does exactly that, on 127.0.0.1 with TLS from a throw-away CA, registered with a `url:`
clientConfig. `sideEffects: None` as KFP's, so the API server calls it for dry runs too (Argo
CD's Server-Side Diff is one).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GROUP = "pipelines.kubeflow.org"
PIPELINE_ID_LABEL = f"{GROUP}/pipeline-id"
PIPELINE_LABEL = f"{GROUP}/pipeline"
NAME = "mlp-e2e-pipelineversions"

PipelineLookup = Callable[[str, str], dict[str, Any] | None]
"""(namespace, name) -> the live Pipeline, or None."""


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certificates(state: Path) -> tuple[bytes, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1: (CA PEM, cert path, key path)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlp-e2e-webhook-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=6))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=6))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    state.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = state / "webhook.crt", state / "webhook.key"
    cert_path.write_bytes(_pem_cert(cert))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return _pem_cert(ca), cert_path, key_path


def mutate(request: dict[str, Any], lookup: PipelineLookup) -> dict[str, Any]:
    """The AdmissionReview response for one request: KFP's `Default`."""
    uid = request["uid"]
    obj = request["object"]
    namespace = request.get("namespace") or obj["metadata"].get("namespace", "")
    pipeline_name = obj.get("spec", {}).get("pipelineName", "")
    pipeline = lookup(namespace, pipeline_name) if pipeline_name else None
    if pipeline is None:
        return {
            "uid": uid,
            "allowed": False,
            "status": {
                "code": 400,
                "message": "The spec.pipelineName doesn't map to an existing Pipeline object",
            },
        }
    meta = obj["metadata"]
    patch: list[dict[str, Any]] = []
    if "labels" not in meta:
        patch.append({"op": "add", "path": "/metadata/labels", "value": {}})
    for key, value in (
        (PIPELINE_ID_LABEL, pipeline["metadata"]["uid"]),
        (PIPELINE_LABEL, pipeline["metadata"]["name"]),
    ):
        patch.append(
            {"op": "add", "path": f"/metadata/labels/{key.replace('/', '~1')}", "value": value}
        )
    owner = {
        "apiVersion": f"{GROUP}/v2beta1",
        "kind": "Pipeline",
        "name": pipeline["metadata"]["name"],
        "uid": pipeline["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    owners = [
        o
        for o in meta.get("ownerReferences", [])
        if not (o.get("apiVersion") == owner["apiVersion"] and o.get("kind") == "Pipeline")
    ]
    patch.append({"op": "add", "path": "/metadata/ownerReferences", "value": [*owners, owner]})
    return {
        "uid": uid,
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
    }


@contextlib.contextmanager
def serving(state: Path, lookup: PipelineLookup) -> Iterator[tuple[int, bytes, list[str]]]:
    """The webhook on 127.0.0.1: (port, CA PEM, log of "<dryRun> <name>" per request)."""
    ca, cert, key = make_certificates(state)
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = review["request"]
            calls.append(f"dryRun={request.get('dryRun', False)} {request.get('name', '')}")
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": mutate(request, lookup),
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ca, calls
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def configuration(port: int, ca: bytes) -> dict[str, Any]:
    """The MutatingWebhookConfiguration that sends PipelineVersion writes to the server."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": NAME},
        "webhooks": [
            {
                "name": f"pipelineversions.{GROUP}",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/mutate",
                    "caBundle": base64.b64encode(ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["v2beta1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["pipelineversions"],
                    }
                ],
            }
        ],
    }
