#!/usr/bin/env python3
"""CustomResourceDefinition YAMLs to strict, standalone kubeconform schemas.

Usage: crd_to_jsonschema.py CORE_SPEC_V3_DIR SCHEMA_OUT YAML_OUT PROJECT=DIR [PROJECT=DIR ...]

For every PROJECT=DIR, the YAML files under DIR (recursively, sorted) that hold complete
apiextensions.k8s.io/v1 CRDs are copied to YAML_OUT/PROJECT/ (for server-side apply into a
real apiserver) and converted, one file per served version, to

    SCHEMA_OUT/<group>/<kind>_<version>-strict.json

which kubeconform v0.7.0 finds with the schema location
`SCHEMA_OUT/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}{{ .StrictSuffix }}.json`.
The full API group is kept (not only its first label, as openapi2jsonschema's
FILENAME_FORMAT='{kind}-{group}-{version}' does), so serving.kserve.io and serving.knative.dev
can never collide. kustomization.yaml files and CRD patches (documents without spec.group)
are skipped; any other document is an error.

Strictness follows the apiserver's strict field validation (see openapi.py). On top of what
the CRD says, the root accepts apiVersion, kind and a metadata that is validated as the core
ObjectMeta (taken from CORE_SPEC_V3_DIR), as the apiserver does for every custom resource.

Outputs are written into temporary siblings and renamed into place: never half a tree.
Needs PyYAML (run with the private interpreter that scripts/install-tools.sh prepares).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from core_to_jsonschema import read_definitions
from openapi import ConversionError, Schema, closure, convert, dump_json

try:  # libyaml's loader: ten times faster on these multi-megabyte files
    from yaml import CSafeLoader as BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as BaseLoader  # type: ignore[assignment]

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class CRDLoader(BaseLoader):
    """SafeLoader that reads the YAML 1.1 `=` value tag (enum: ["="]) as a plain string."""


def _value_tag(loader: yaml.BaseLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "expected a scalar", node.start_mark)
    return str(loader.construct_scalar(node))


CRDLoader.add_constructor("tag:yaml.org,2002:value", _value_tag)


def object_meta_definitions(core_spec: Path) -> dict[str, Schema]:
    definitions = read_definitions(core_spec)
    converted: dict[str, Schema] = {}
    refs: dict[str, set[str]] = {}
    for name, schema in definitions.items():
        found: set[str] = set()
        converted[name] = convert(schema, strict=True, where=name, on_ref=found.add)
        refs[name] = found
    return closure([OBJECT_META], converted, refs)


def is_complete_crd(document: dict[str, Any]) -> bool:
    spec = document.get("spec") or {}
    return (
        document.get("apiVersion") == "apiextensions.k8s.io/v1"
        and document.get("kind") == "CustomResourceDefinition"
        and isinstance(spec.get("group"), str)
        and isinstance((spec.get("names") or {}).get("kind"), str)
        and isinstance(spec.get("versions"), list)
    )


def crd_files(directory: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """(file, CRDs in it) for every file under `directory` that holds complete CRDs."""
    found: list[tuple[Path, list[dict[str, Any]]]] = []
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml")):
        if path.name in ("kustomization.yaml", "kustomization.yml"):
            continue
        with path.open(encoding="utf-8") as handle:
            documents = [d for d in yaml.load_all(handle, Loader=CRDLoader) if d]
        crds = [d for d in documents if isinstance(d, dict) and is_complete_crd(d)]
        patches = [
            d
            for d in documents
            if isinstance(d, dict)
            and d.get("kind") == "CustomResourceDefinition"
            and not is_complete_crd(d)
        ]
        if len(crds) + len(patches) != len(documents):
            raise ConversionError(f"{path}: holds documents that are not CRDs")
        if crds and patches:
            raise ConversionError(f"{path}: mixes complete CRDs with CRD patches")
        if patches:
            print(f"crd_to_jsonschema: skipping CRD patch {path}", file=sys.stderr)
            continue
        found.append((path, crds))
    if not found:
        raise ConversionError(f"{directory}: no CustomResourceDefinition found")
    return found


def crd_schemas(crd: dict[str, Any], meta: dict[str, Schema], where: str) -> dict[str, Schema]:
    """{relative file name: schema} for every served version of one CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    out: dict[str, Schema] = {}
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        name = version["name"]
        root = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
        if root is None:
            raise ConversionError(f"{where}: {kind} {group}/{name} has no openAPIV3Schema")
        schema = convert(root, strict=True, where=f"{where}: {kind}.{name}")
        properties = schema.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties["metadata"] = {"$ref": "#/definitions/" + OBJECT_META}
        if root.get("x-kubernetes-preserve-unknown-fields") is not True:
            schema["additionalProperties"] = False
        schema["definitions"] = meta
        out[f"{group}/{kind.lower()}_{name.lower()}-strict.json"] = schema
    return out


def replace_dir(tmp: Path, final: Path) -> None:
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or any("=" not in arg for arg in argv[3:]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    core_spec, schema_out, yaml_out = (Path(arg) for arg in argv[:3])
    projects = [tuple(arg.split("=", 1)) for arg in argv[3:]]
    try:
        meta = object_meta_definitions(core_spec)
        schemas: dict[str, Schema] = {}
        origin: dict[str, str] = {}
        copies: dict[str, Path] = {}
        for project, directory in projects:
            for path, crds in crd_files(Path(directory)):
                target = f"{project}/{path.name}"
                if target in copies:
                    raise ConversionError(f"{path}: a second file named {target}")
                copies[target] = path
                for crd in crds:
                    for filename, schema in crd_schemas(crd, meta, str(path)).items():
                        if filename in schemas:
                            raise ConversionError(
                                f"{filename}: defined by both {origin[filename]} and {path}"
                            )
                        schemas[filename] = schema
                        origin[filename] = str(path)
    except (ConversionError, OSError, yaml.YAMLError, KeyError, TypeError) as error:
        print(f"crd_to_jsonschema: error: {error}", file=sys.stderr)
        return 1

    schema_tmp = schema_out.with_name(schema_out.name + ".tmp")
    yaml_tmp = yaml_out.with_name(yaml_out.name + ".tmp")
    for tmp in (schema_tmp, yaml_tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    for filename, schema in sorted(schemas.items()):
        dump_json(schema, schema_tmp / filename)
    for target, source in sorted(copies.items()):
        (yaml_tmp / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, yaml_tmp / target)
    replace_dir(schema_tmp, schema_out)
    replace_dir(yaml_tmp, yaml_out)
    print(
        f"crd_to_jsonschema: {len(schemas)} schemas from {len(copies)} CRD files",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
