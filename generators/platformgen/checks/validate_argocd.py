"""Validate the rendered `argocd/` tree offline, with the pinned tools.

1. Every Argo CD object (apiVersion argoproj.io/*) against the Argo CD v3.5.1 CRD schemas that
   `make tools` converted (`.tools/schemas/crds/argoproj.io/`), with `kubeconform -strict`.
2. Every source an Application names, for Applications and for each element of an
   ApplicationSet's list generator: the path exists in the repository and builds the way Argo
   CD's repo-server builds it. A kustomization: a copy of the tree, `kustomize edit add
   component` for each `kustomize.components` entry, then `kustomize build`. A Helm chart:
   `helm template` with its `helm.valueFiles`. Nothing else is accepted.

ApplicationSet templates are expanded for this only as far as our emitter writes them:
`{{.key}}` from the element; any other template syntax left in a source is reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from platformgen.checks.validate import bounded_map, run_tool
from platformgen.errors import ToolError
from platformgen.render import GENERATED_ROOTS

ARGOCD_GROUP = "argoproj.io"
_FIELD = re.compile(r"\{\{\s*\.([A-Za-z0-9_]+)\s*\}\}")


def argocd_documents(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file, object) of every Argo CD object under `root`/argocd."""
    out = []
    for path in sorted((root / "argocd").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(ARGOCD_GROUP):
                out.append((path.relative_to(root).as_posix(), doc))
    return out


def _tool(tools: Path, name: str) -> Path:
    path = tools / "bin" / name
    if not path.is_file():
        raise ToolError(f"{name} not found in {tools / 'bin'}: run `make tools`")
    return path


def check_schemas(root: Path, tools: Path) -> tuple[int, list[str]]:
    """kubeconform -strict on every Argo CD object: (objects checked, problems)."""
    documents = argocd_documents(root)
    if not documents:
        return 0, []
    schemas = tools / "schemas"
    if not (schemas / "crds" / ARGOCD_GROUP).is_dir():
        raise ToolError(f"Argo CD CRD schemas not found in {schemas / 'crds'}: run `make tools`")
    process = run_tool(
        [
            str(_tool(tools, "kubeconform")),
            "-strict",
            "-summary",
            "-n",
            "1",  # one worker: a few dozen objects, and several workers compile one schema each
            "-output",
            "json",
            "-schema-location",
            str(
                schemas / "crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}"
                "{{ .StrictSuffix }}.json"
            ),
            "-",
        ],
        cwd=schemas,
        stdin=yaml.safe_dump_all([doc for _, doc in documents], sort_keys=False),
    )
    try:
        report = json.loads(process.stdout)
        summary = report["summary"]
    except (ValueError, KeyError) as error:
        raise ToolError(f"kubeconform gave no JSON summary: {process.stderr.strip()}") from error
    problems = [
        f"{r.get('kind')} {r.get('name')}: {str(r.get('msg', '')).strip()}"
        for r in report.get("resources") or []
        if r.get("status") != "statusValid"
    ]
    if int(summary["valid"]) != len(documents) and not problems:
        problems.append(f"kubeconform: {summary['valid']} of {len(documents)} objects valid")
    return len(documents), problems


def _expand(value: Any, element: dict[str, str], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, element, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, element, where) for v in value]
    if not isinstance(value, str):
        return value

    def field(match: re.Match[str]) -> str:
        if match.group(1) not in element:
            raise ValueError(f"{where}: {match.group(0)}: no such key in the generator element")
        return element[match.group(1)]

    return _FIELD.sub(field, value)


def applications(root: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file, application name, spec) of every Application, ApplicationSets expanded."""
    for file, doc in argocd_documents(root):
        if doc["kind"] == "Application":
            yield file, doc["metadata"]["name"], doc["spec"]
        elif doc["kind"] == "ApplicationSet":
            template = doc["spec"]["template"]
            for generator in doc["spec"]["generators"]:
                for element in generator.get("list", {}).get("elements", []):
                    where = f"{file}: element {element}"
                    name = _expand(template["metadata"]["name"], element, where)
                    yield file, name, _expand(template["spec"], element, where)


def check_sources(root: Path, tools: Path) -> tuple[int, list[str]]:
    """Every Application source path exists and builds: (sources checked, problems)."""
    with tempfile.TemporaryDirectory(prefix="platformgen-argocd-") as temp:
        copy = Path(temp) / "repo"
        copy.mkdir()
        # Only the generated trees: sources live there and refer to nothing else.
        for folder in sorted({*GENERATED_ROOTS, "charts"}):
            if (root / folder).is_dir():
                shutil.copytree(root / folder, copy / folder)
        try:
            apps = list(applications(root))
        except ValueError as error:
            return 0, [str(error)]
        sources = [
            (f"{file}: Application {name}", source)
            for file, name, spec in apps
            for source in spec.get("sources") or [spec.get("source") or {}]
        ]
        # `kustomize edit add component` changes the source's folder in the copy, so the sources
        # of one folder run one after another; different folders run in parallel.
        by_folder: dict[str, list[int]] = {}
        for i, (_, source) in enumerate(sources):
            by_folder.setdefault(os.path.normpath(str(source.get("path", ""))), []).append(i)

        def check_folder(indexes: list[int]) -> list[tuple[int, str]]:
            return [
                (i, f"{sources[i][0]}: {problem}")
                for i in indexes
                if (problem := _check_source(copy, tools, sources[i][1]))
            ]

        found = bounded_map(check_folder, list(by_folder.values()))
        checked = len(sources)
        problems = [problem for _, problem in sorted(p for group in found for p in group)]
    return checked, problems


def _check_source(copy: Path, tools: Path, source: dict[str, Any]) -> str | None:
    path = str(source.get("path", ""))
    if "{{" in json.dumps(source):
        return f"unexpanded template in source {source}"
    folder = (copy / path).resolve()
    if not path or not folder.is_relative_to(copy.resolve()) or not folder.is_dir():
        return f"source.path {path!r} is not a folder of the repository"
    if (folder / "kustomization.yaml").is_file():
        kustomize = str(_tool(tools, "kustomize"))
        for component in source.get("kustomize", {}).get("components", []):
            added = run_tool([kustomize, "edit", "add", "component", component], cwd=folder)
            if added.returncode != 0:
                return f"kustomize edit add component {component}: {added.stderr.strip()}"
        built = run_tool([kustomize, "build", "."], cwd=folder)
        what = f"kustomize build {path}"
    elif (folder / "Chart.yaml").is_file():
        values = [a for f in source.get("helm", {}).get("valueFiles", []) for a in ("-f", f)]
        release = source.get("helm", {}).get("releaseName", "release")
        built = run_tool([str(_tool(tools, "helm")), "template", release, ".", *values], cwd=folder)
        what = f"helm template {path}"
    else:
        return f"source.path {path!r} has neither kustomization.yaml nor Chart.yaml"
    if built.returncode != 0 or built.stderr.strip():
        return f"{what}: {built.stderr.strip() or f'exit status {built.returncode}'}"
    if not [d for d in yaml.safe_load_all(built.stdout) if d]:
        return f"{what}: rendered no objects"
    return None


def validate_argocd(root: Path, tools: Path) -> tuple[str, list[str]]:
    """Both checks: (one-line summary, problems)."""
    objects, schema_problems = check_schemas(root, tools)
    sources, source_problems = check_sources(root, tools) if objects else (0, [])
    summary = (
        f"argocd/: {objects} Argo CD objects, {len(schema_problems)} schema errors; "
        f"{sources} application sources, {len(source_problems)} failing"
    )
    return summary, [*schema_problems, *source_problems]
