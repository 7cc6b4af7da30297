"""ServiceAccount per component. The token is mounted only when the component declares RBAC."""

from __future__ import annotations

from platformgen.naming import Manifest, metadata
from platformgen.resolve import ComponentView


def build_service_account(view: ComponentView) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(view.spec, view.name, view.component.role, view.namespace),
        "automountServiceAccountToken": bool(view.component.rbac),
    }
