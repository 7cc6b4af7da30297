"""OpenAPI v3 (Kubernetes flavour) to JSON Schema draft-04, the dialect kubeconform compiles.

Shared by core_to_jsonschema.py and crd_to_jsonschema.py. Stdlib only.

What the conversion does, and why:
- keeps only validation keywords (type, properties, required, enum, pattern, bounds, ...);
  descriptions, defaults and x-kubernetes-* markers are dropped after they are read, which
  keeps each standalone file small;
- `$ref: #/components/schemas/X` becomes `$ref: #/definitions/X` (the caller ships the
  closure of definitions inside the same file: self-contained, recursion-safe);
- `nullable: true` adds "null" to the type;
- `x-kubernetes-int-or-string` / `format: int-or-string` becomes integer-or-string;
- strict (kubeconform -strict, the apiserver's strict field validation): every object schema
  that lists `properties` and says nothing about `additionalProperties` rejects unknown fields,
  unless it carries `x-kubernetes-preserve-unknown-fields: true`. Branches of
  allOf/anyOf/oneOf/not are constraints on an object described elsewhere, so they are never
  closed (closing them would reject fields the outer schema allows);
- `x-kubernetes-embedded-resource` objects always accept apiVersion, kind and metadata.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

# Keywords whose value is copied as is.
_PLAIN = (
    "type",
    "format",
    "enum",
    "required",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
# Keywords that hold one schema, a map of schemas, or a list of schemas.
_ONE = ("not",)
_MAP = ("properties", "patternProperties")
_LIST = ("allOf", "anyOf", "oneOf")
# Everything else that may appear and is deliberately dropped.
_DROPPED_PREFIXES = ("x-",)
_DROPPED = {"description", "default", "example", "externalDocs", "title", "readOnly", "nullable"}

COMPONENTS_PREFIX = "#/components/schemas/"
DEFINITIONS_PREFIX = "#/definitions/"

INT_OR_STRING: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}]}


class ConversionError(Exception):
    """The input is not a schema this converter understands; the message names where."""


def convert(
    node: Any,
    *,
    strict: bool,
    where: str,
    on_ref: Callable[[str], None] | None = None,
    branch: bool = False,
) -> Schema:
    """Convert one OpenAPI v3 schema node (recursively) to draft-04."""
    if not isinstance(node, dict):
        raise ConversionError(f"{where}: expected a schema object, got {type(node).__name__}")
    out: Schema = {}
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str) or not ref.startswith(COMPONENTS_PREFIX):
            raise ConversionError(f"{where}: unsupported $ref {ref!r} (only {COMPONENTS_PREFIX}*)")
        name = ref[len(COMPONENTS_PREFIX) :]
        if on_ref is None:
            raise ConversionError(f"{where}: $ref {ref!r} where no definitions are available")
        on_ref(name)
        # draft-04 ignores siblings of $ref; keep none.
        return {"$ref": DEFINITIONS_PREFIX + name}

    for key, value in node.items():
        if key in _PLAIN:
            out[key] = value
        elif key in _ONE:
            out[key] = convert(
                value, strict=strict, where=f"{where}.{key}", on_ref=on_ref, branch=True
            )
        elif key in _MAP:
            if not isinstance(value, dict):
                raise ConversionError(f"{where}.{key}: expected a map of schemas")
            out[key] = {
                name: convert(child, strict=strict, where=f"{where}.{key}.{name}", on_ref=on_ref)
                for name, child in value.items()
            }
        elif key in _LIST:
            if not isinstance(value, list):
                raise ConversionError(f"{where}.{key}: expected a list of schemas")
            out[key] = [
                convert(
                    child, strict=strict, where=f"{where}.{key}[{i}]", on_ref=on_ref, branch=True
                )
                for i, child in enumerate(value)
            ]
        elif key == "items":
            if isinstance(value, list):
                out[key] = [
                    convert(child, strict=strict, where=f"{where}.items[{i}]", on_ref=on_ref)
                    for i, child in enumerate(value)
                ]
            else:
                out[key] = convert(value, strict=strict, where=f"{where}.items", on_ref=on_ref)
        elif key == "additionalProperties":
            if isinstance(value, bool):
                out[key] = value
            else:
                out[key] = convert(
                    value, strict=strict, where=f"{where}.additionalProperties", on_ref=on_ref
                )
        elif key in _DROPPED or key.startswith(_DROPPED_PREFIXES):
            continue
        else:
            raise ConversionError(f"{where}: unknown schema keyword {key!r}")

    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string") is True:
        out.pop("format", None)
        out.pop("type", None)
        if not any(k in out for k in _LIST):
            out.update(INT_OR_STRING)

    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]

    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("x-kubernetes-embedded-resource") is True and "properties" in out:
        props = out["properties"]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if strict and not branch and not preserve and "properties" in out:
        out.setdefault("additionalProperties", False)
    # Kubernetes wraps a $ref in allOf only to attach a description or default, both dropped:
    # unwrap it so that kubeconform reports the failing field, not "allOf failed".
    if list(out) == ["allOf"] and len(out["allOf"]) == 1 and list(out["allOf"][0]) == ["$ref"]:
        return dict(out["allOf"][0])
    return out


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def dump_json(data: Any, path: Path) -> None:
    """Compact, key-sorted JSON: byte-identical on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def kind_suffix(api_version: str) -> str:
    """kubeconform v0.7.0 pkg/registry/registry.go schemaPath(): `{{ .KindSuffix }}`."""
    group_parts = api_version.split("/")
    suffix = "-" + group_parts[0].split(".")[0].lower()
    if len(group_parts) > 1:
        suffix += "-" + group_parts[1].lower()
    return suffix


def closure(
    roots: list[str], converted: dict[str, Schema], refs: dict[str, set[str]]
) -> dict[str, Schema]:
    """The definitions reachable from `roots` (by name), for one self-contained file."""
    seen: dict[str, Schema] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in converted:
            raise ConversionError(f"$ref to unknown definition {name!r}")
        seen[name] = converted[name]
        stack.extend(sorted(refs[name] - seen.keys()))
    return seen
