"""Validate kustomize targets with the pinned kustomize and kubeconform, fully offline.

For each target, `kustomize build` runs once; its output is piped into
`kubeconform -strict -summary -output json` once per Kubernetes version, with only the schema
locations that `make tools` (scripts/install-tools.sh) generated under `.tools/schemas/`:

- core:  `kubernetes/v<version>-standalone-strict/<kind><kind-suffix>.json`
- CRDs:  `crds/<group>/<kind>_<version>-strict.json`

Never the network default, and never `-ignore-missing-schemas`: a kind without a schema is an
error, not a skip. A warning from kustomize (a deprecated field, say) fails the target too.
Kubeflow Pipelines objects, whose CRD is not obtainable here, are checked against KFP's own
protobuf definitions instead (platformgen.kfp_objects) and counted in the same summary.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from platformgen.errors import ToolError
from platformgen.kfp_objects import check_kfp_object, is_kfp_object

try:  # libyaml's loader when PyYAML has it: much faster on large builds
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

logger = logging.getLogger(__name__)

KUBERNETES_VERSIONS: tuple[str, ...] = ("1.35.4", "1.36.3")
"""The Kubernetes releases every target is validated against (exact patch versions).

scripts/install-tools.sh KUBERNETES_VERSIONS generates the schemas for the same two."""

TOOL_TIMEOUT_SECONDS = 300
"""Upper bound for one kustomize or kubeconform run; a hung tool is an error, not a wait."""

CORE_SCHEMA_LOCATION = (
    "kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
    "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
)
CRD_SCHEMA_LOCATION = (
    "crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}{{ .StrictSuffix }}.json"
)

_SCHEMA_FAILURE_PREFIX = re.compile(
    r"^problem validating schema\. Check JSON formatting: "
    r"jsonschema validation failed with '[^']*'\s*-\s*"
)
_CAUSE_SEPARATOR = re.compile(r"\s+-\s+(?=at ')")
_WRAPPER_CAUSE = re.compile(r"^at '[^']*': (validation failed|allOf failed)$")


@dataclass(frozen=True)
class TargetResult:
    """The validation of one kustomize target against one Kubernetes version."""

    target: str
    """The kustomize directory, as given (relative to the root), e.g. "overlays/prod"."""
    kubernetes_version: str
    resources: int
    valid: int
    invalid: int
    errors: int
    skipped: int
    messages: tuple[str, ...]
    """kustomize and kubeconform diagnostics, one per line."""
    kinds: dict[str, int]
    """Objects per kind in the kustomize output."""
    built: bool = True
    """kustomize build exited 0 and printed nothing on stderr (no warnings)."""

    @property
    def ok(self) -> bool:
        """Built cleanly, at least one object, and every object valid (none skipped)."""
        return (
            self.built
            and self.resources > 0
            and self.valid == self.resources
            and self.invalid == 0
            and self.errors == 0
            and self.skipped == 0
        )


def validate_targets(
    root: Path,
    targets: Sequence[str],
    kubernetes_versions: Sequence[str] = KUBERNETES_VERSIONS,
    tools_dir: Path | None = None,
) -> list[TargetResult]:
    """kustomize build every target under `root` and validate it for every Kubernetes version.

    Returns one result per (target, version), in that order. Raises ToolError when a tool or
    the schemas for a requested version are not installed, or when a tool misbehaves.
    """
    root = root.absolute()
    tools = (tools_dir if tools_dir is not None else root / ".tools").absolute()
    kustomize = _tool(tools, "kustomize", root)
    kubeconform = _tool(tools, "kubeconform", root)
    schemas = _schemas(tools, kubernetes_versions, root)

    results: list[TargetResult] = []
    for target in targets:
        manifests, build_messages, built = _kustomize_build(kustomize, root, target)
        kinds = _kinds(manifests)
        manifests, kfp_problems, kfp_count = _split_kfp(manifests)
        for version in kubernetes_versions:
            result = _kubeconform(
                kubeconform, schemas, target, version, manifests, build_messages, built, kinds
            )
            results.append(_with_kfp(result, kfp_count, kfp_problems))
    return results


def _split_kfp(manifests: str) -> tuple[str, list[str], int]:
    """Take the KFP objects out of the stream kubeconform sees and check them with
    kfp_objects (their CRD schema is not obtainable; see that module)."""
    documents = [d for d in yaml.load_all(manifests, Loader=_Loader) if d]
    kfp = [d for d in documents if is_kfp_object(d)]
    if not kfp:
        return manifests, [], 0
    problems = [p for d in kfp for p in check_kfp_object(d)]
    rest = [d for d in documents if not is_kfp_object(d)]
    return yaml.safe_dump_all(rest, sort_keys=False), problems, len(kfp)


def _with_kfp(result: TargetResult, count: int, problems: list[str]) -> TargetResult:
    if not count:
        return result
    invalid = len({p.split(":", 1)[0] for p in problems})
    return replace(
        result,
        resources=result.resources + count,
        valid=result.valid + count - invalid,
        invalid=result.invalid + invalid,
        messages=result.messages + tuple(problems),
    )


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _tool(tools: Path, name: str, root: Path) -> Path:
    path = tools / "bin" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolError(f"{name} not found in {_display(tools / 'bin', root)}: run `make tools`")
    return path


def _schemas(tools: Path, versions: Sequence[str], root: Path) -> Path:
    schemas = tools / "schemas"
    if not versions:
        raise ToolError("no Kubernetes version to validate against")
    for version in versions:
        if not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise ToolError(f"Kubernetes version {version!r}: expected an exact MAJOR.MINOR.PATCH")
        if not (schemas / "kubernetes" / f"v{version}-standalone-strict").is_dir():
            available = sorted(
                p.name.removeprefix("v").removesuffix("-standalone-strict")
                for p in (schemas / "kubernetes").glob("v*-standalone-strict")
            )
            raise ToolError(
                f"Kubernetes {version} schemas not found in {_display(schemas, root)}"
                f" (installed: {', '.join(available) or 'none'}): run `make tools`"
            )
    if not (schemas / "crds").is_dir():
        raise ToolError(f"CRD schemas not found in {_display(schemas, root)}: run `make tools`")
    return schemas


def _run(
    command: list[str], *, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    logger.debug("running %s", " ".join(command))
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ToolError(f"{Path(command[0]).name} timed out after {error.timeout}s") from error
    except OSError as error:
        raise ToolError(f"cannot run {command[0]}: {error}") from error


def _kustomize_build(kustomize: Path, root: Path, target: str) -> tuple[str, list[str], bool]:
    """(manifests, diagnostics, built cleanly) of `kustomize build <target>`."""
    logger.info("kustomize build %s", target)
    process = _run([str(kustomize), "build", str(root / target)], cwd=root)
    messages = [
        f"kustomize build {target}: {line.strip()}"
        for line in process.stderr.splitlines()
        if line.strip()
    ]
    if process.returncode != 0 and not messages:
        messages.append(f"kustomize build {target}: exit status {process.returncode}")
    built = process.returncode == 0 and not messages
    return (process.stdout if process.returncode == 0 else ""), messages, built


def _kinds(manifests: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for document in yaml.load_all(manifests, Loader=_Loader):
        if isinstance(document, dict):
            counts[str(document.get("kind", "<no kind>"))] += 1
    return dict(sorted(counts.items()))


def _kubeconform(
    kubeconform: Path,
    schemas: Path,
    target: str,
    version: str,
    manifests: str,
    build_messages: list[str],
    built: bool,
    kinds: dict[str, int],
) -> TargetResult:
    messages = list(build_messages)
    if not manifests.strip():
        if built:
            messages.append(f"kustomize build {target}: rendered no objects")
        return TargetResult(target, version, 0, 0, 0, 0, 0, tuple(messages), kinds, built)

    logger.info("kubeconform %s for Kubernetes %s", target, version)
    process = _run(
        [
            str(kubeconform),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            version,
            "-schema-location",
            str(schemas / CORE_SCHEMA_LOCATION),
            "-schema-location",
            str(schemas / CRD_SCHEMA_LOCATION),
            "-",
        ],
        cwd=schemas,
        stdin=manifests,
    )
    report = _report(process)
    summary = report["summary"]
    for resource in report.get("resources") or []:
        messages.extend(_resource_messages(resource, schemas))
    for line in process.stderr.splitlines():
        if line.strip():
            messages.append(f"kubeconform: {line.strip()}")
    valid, invalid = int(summary["valid"]), int(summary["invalid"])
    errors, skipped = int(summary["errors"]), int(summary["skipped"])
    return TargetResult(
        target=target,
        kubernetes_version=version,
        resources=valid + invalid + errors + skipped,
        valid=valid,
        invalid=invalid,
        errors=errors,
        skipped=skipped,
        messages=tuple(messages),
        kinds=kinds,
        built=built,
    )


def _report(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        report = json.loads(process.stdout)
        if not isinstance(report, dict) or not isinstance(report.get("summary"), dict):
            raise ValueError("no summary object")
        for key in ("valid", "invalid", "errors", "skipped"):
            int(report["summary"][key])
    except (ValueError, KeyError, TypeError) as error:
        detail = (process.stderr or process.stdout).strip().splitlines()
        raise ToolError(
            f"kubeconform (exit status {process.returncode}) gave no JSON summary: "
            + (detail[0] if detail else str(error))
        ) from error
    return report


def _resource_messages(resource: dict[str, Any], schemas: Path) -> list[str]:
    """One line per problem of one kubeconform resource entry (valid entries give none)."""
    status = str(resource.get("status", ""))
    if status == "statusValid":
        return []
    kind = resource.get("kind") or "<unknown kind>"
    name = resource.get("name") or "<unnamed>"
    api_version = resource.get("version") or "<no apiVersion>"
    subject = f"{kind} {name} ({api_version})"
    message = str(resource.get("msg", "")).strip()
    if message.startswith("could not find schema for"):
        return [
            f"{subject}: no schema for {api_version} {kind} in {schemas}"
            " (a kind without a schema is an error, never skipped)"
        ]
    detail = _SCHEMA_FAILURE_PREFIX.sub("", message)
    causes = [c.strip() for c in _CAUSE_SEPARATOR.split(detail) if c.strip()]
    specific = [c for c in causes if not _WRAPPER_CAUSE.match(c)] or causes or [status]
    return [f"{subject}: {cause}" for cause in specific]


def kustomize_documents(root: Path, target: str, tools_dir: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build <target>` prints (with the pinned kustomize), or a ToolError
    with kustomize's own messages."""
    root = root.absolute()
    manifests, messages, built = _kustomize_build(_tool(tools_dir, "kustomize", root), root, target)
    if not built:
        raise ToolError("\n".join(messages))
    return [d for d in yaml.load_all(manifests, Loader=_Loader) if isinstance(d, dict)]
