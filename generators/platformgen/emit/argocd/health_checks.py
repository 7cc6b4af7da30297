"""Argo CD health checks for the kinds Argo CD cannot judge: `argocd/argocd-cm.yaml`.

One Lua check per kind whose health column in platformgen/kinds.py is `custom`
(`HEALTH_CHECKS_NEEDED`), each a real file beside this module, `health/<group>_<Kind>.lua`,
named the way Argo CD names them in its own `resource_customizations/`. The emitter puts them
into a partial `argocd-cm` ConfigMap, one `resource.customizations.health.<group>_<Kind>` key
each (Argo CD's split-key form), applied server-side so that it owns only those keys:

    kubectl apply --server-side --field-manager=platformgen -f argocd/argocd-cm.yaml

Every check returns Progressing for a status it does not know (a controller that has not seen
the object yet, a condition a newer controller adds): never Healthy. tests/emit/
test_argocd_health.py runs each through the real Argo CD binary's Lua engine on fixtures of
the upstream status shapes (`argocd admin settings resource-overrides health`).
"""

from __future__ import annotations

from importlib.resources import files

from platformgen.kinds import HEALTH_CHECKS_NEEDED
from platformgen.naming import Manifest

CONFIG_MAP = "argocd-cm"
HEALTH_KEY_PREFIX = "resource.customizations.health."
FOLDER = "health"
PART_OF_ARGOCD = {"app.kubernetes.io/part-of": "argocd"}
"""The label Argo CD's settings informer selects its ConfigMaps by."""


def check_name(api_version: str, kind: str) -> str:
    """`<group>_<Kind>`: the check's file stem and the suffix of its argocd-cm key."""
    return f"{api_version.rpartition('/')[0]}_{kind}"


def lua_check(api_version: str, kind: str) -> str:
    """The Lua health check of one kind. A kind that needs one and has none is a generator
    bug (a new `custom` row in kinds.py without its check)."""
    path = files("platformgen.emit.argocd").joinpath(FOLDER, f"{check_name(api_version, kind)}.lua")
    if not path.is_file():
        raise KeyError(
            f"kind {kind!r} ({api_version}) has health 'custom' in platformgen/kinds.py but no "
            f"Lua check emit/argocd/{FOLDER}/{check_name(api_version, kind)}.lua"
        )
    return path.read_text(encoding="utf-8")


def build_argocd_cm(namespace: str) -> Manifest:
    """The argocd-cm keys of every health check the platform's kinds need."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": namespace, "labels": dict(PART_OF_ARGOCD)},
        "data": {
            f"{HEALTH_KEY_PREFIX}{check_name(api_version, kind)}": lua_check(api_version, kind)
            for api_version, kind in HEALTH_CHECKS_NEEDED
        },
    }
