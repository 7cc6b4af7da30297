"""The one place for object names, standard labels and selector labels (our _helpers.tpl)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from platformgen.spec.model import PlatformSpec

Manifest = dict[str, Any]
"""One Kubernetes object as plain data."""

MANAGED_BY = "platformgen"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAMESPACE_NAME = "kubernetes.io/metadata.name"


def selector_labels(spec: PlatformSpec, name: str) -> dict[str, str]:
    """Labels that select a component's pods. Never includes a version."""
    return {NAME: name, PART_OF: spec.platform.part_of}


def standard_labels(spec: PlatformSpec, name: str, role: str) -> dict[str, str]:
    """Labels on every object a component owns."""
    return {
        **selector_labels(spec, name),
        COMPONENT: role,
        MANAGED_BY_LABEL: MANAGED_BY,
    }


def metadata(
    spec: PlatformSpec,
    name: str,
    role: str,
    namespace: str | None = None,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Object metadata with the standard labels."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": {**standard_labels(spec, name, role), **(extra_labels or {})},
    }
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def image_repository(image: str) -> str:
    """registry:5000/team/app:1.0 -> registry:5000/team/app (also strips a digest)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def kebab(kind: str) -> str:
    """HorizontalPodAutoscaler -> horizontal-pod-autoscaler (file names of objects)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()


def camel(name: str) -> str:
    """model-server -> ModelServer, for alert names."""
    return "".join(part.capitalize() for part in name.split("-"))


def volume_name(path: str) -> str:
    """/var/cache/app -> var-cache-app: the emptyDir volume backing a writable path."""
    return path.strip("/").replace("/", "-").replace("_", "-").lower() or "root"


MAX_NAME = 63
"""A DNS-1123 label: the longest name of most objects, and of a component."""
CONTENT_HASH_DIGITS = 10
"""Digits of the content hash that names content-named objects: `<name>-<10 digits>`."""
CONTENT_HASH_SUFFIX = CONTENT_HASH_DIGITS + 1
"""What a content name adds to its component's name: `-` and the digits."""


def content_name(name: str, content: Any) -> str:
    """`<name>-<10 digits>`: the name of an object whose spec is immutable (a Job, a KFP
    PipelineVersion), derived from that spec. Same content, same name; changed content, a new
    object. Digits only, like the suffix a CronJob gives its Jobs, so `<name>(-[0-9]+)?`
    matches both (the JobFailed alert relies on it)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    return f"{name}-{number % 10**CONTENT_HASH_DIGITS:0{CONTENT_HASH_DIGITS}d}"
