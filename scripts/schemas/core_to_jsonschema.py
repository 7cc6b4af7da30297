#!/usr/bin/env python3
"""Kubernetes core OpenAPI v3 (api/openapi-spec/v3 of k8s.io/kubernetes) to kubeconform schemas.

Usage: core_to_jsonschema.py SPEC_V3_DIR OUT_DIR

Writes OUT_DIR/<kind><kind-suffix>.json for every group/version/kind the spec declares
(`x-kubernetes-group-version-kind`), named as kubeconform v0.7.0 looks them up with
`{{ .ResourceKind }}{{ .KindSuffix }}.json`: deployment-apps-v1.json, service-v1.json.
Each file is standalone (the definitions it needs are inside it, under `definitions`) and
strict (unknown fields rejected), i.e. kubeconform's `<version>-standalone-strict` layout.
OUT_DIR is written whole into a temporary sibling and renamed into place: never half a tree.
Stdlib only; deterministic output.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from openapi import (
    ConversionError,
    Schema,
    closure,
    convert,
    dump_json,
    kind_suffix,
    load_json,
)

GVK = "x-kubernetes-group-version-kind"


def read_definitions(spec_dir: Path) -> dict[str, Any]:
    """Merge components.schemas of every v3 document; a name must mean one schema.

    Each group/version document lists, for shared types such as DeleteOptions, only the
    group/version/kinds of that document: those lists are united, everything else must match.
    """
    files = sorted(spec_dir.glob("*.json"))
    if not files:
        raise ConversionError(f"{spec_dir}: no OpenAPI v3 documents (*.json)")
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in files:
        schemas = load_json(path).get("components", {}).get("schemas", {})
        for name, schema in schemas.items():
            body = {k: v for k, v in schema.items() if k != GVK}
            if name not in merged:
                merged[name] = {**body, GVK: list(schema.get(GVK, []))}
                origin[name] = path.name
                continue
            known = merged[name]
            if {k: v for k, v in known.items() if k != GVK} != body:
                raise ConversionError(f"{name}: differs between {origin[name]} and {path.name}")
            known[GVK].extend(g for g in schema.get(GVK, []) if g not in known[GVK])
    return merged


def api_version(gvk: dict[str, str]) -> str:
    return f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]


def convert_all(definitions: dict[str, Any]) -> dict[str, Schema]:
    """One standalone strict schema per file name."""
    converted: dict[str, Schema] = {}
    refs: dict[str, set[str]] = {}
    for name, schema in definitions.items():
        found: set[str] = set()
        converted[name] = convert(schema, strict=True, where=name, on_ref=found.add)
        refs[name] = found

    files: dict[str, Schema] = {}
    owner: dict[str, str] = {}
    for name, schema in sorted(definitions.items()):
        for gvk in schema.get(GVK, []):
            filename = f"{gvk['kind']}{kind_suffix(api_version(gvk))}".lower() + ".json"
            if filename in files:
                raise ConversionError(f"{filename}: claimed by both {owner[filename]} and {name}")
            document = dict(converted[name])
            definitions_needed = closure(sorted(refs[name]), converted, refs)
            if definitions_needed:
                document["definitions"] = definitions_needed
            files[filename] = document
            owner[filename] = name
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    spec_dir, out_dir = Path(argv[0]), Path(argv[1])
    try:
        files = convert_all(read_definitions(spec_dir))
    except (ConversionError, OSError, ValueError, KeyError) as error:
        print(f"core_to_jsonschema: error: {error}", file=sys.stderr)
        return 1
    for required in (
        "deployment-apps-v1.json",
        "service-v1.json",
        "customresourcedefinition-apiextensions-v1.json",
    ):
        if required not in files:
            print(f"core_to_jsonschema: error: {spec_dir} has no {required}", file=sys.stderr)
            return 1
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for filename, document in sorted(files.items()):
        dump_json(document, tmp / filename)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    print(f"core_to_jsonschema: {len(files)} schemas in {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
