"""Validate kustomize targets and the Helm chart with the pinned tools, fully offline.

For each target, `kustomize build` runs once; its output is piped into
`kubeconform -strict -summary -output json` once per Kubernetes version, with only the schema
locations that `make tools` (scripts/install-tools.sh) generated under `.tools/schemas/`:

- core:  `kubernetes/v<version>-standalone-strict/<kind><kind-suffix>.json`
- CRDs:  `crds/<group>/<kind>_<version>-strict.json`

Never the network default, and never `-ignore-missing-schemas`: a kind without a schema is an
error, not a skip. A warning from kustomize (a deprecated field, say) fails the target too.
Kubeflow Pipelines objects are validated like every other kind, against the upstream CRDs
vendored in crds/kubeflow-pipelines/; the compiled pipeline inside them, which the CRD leaves
free-form, is also checked against KFP's protobuf definitions (platformgen.checks.kfp_objects).

The chart (`charts/<platform.name>/`) is linted with `helm lint --strict` on Helm 3 and Helm 4
for values.yaml and each values-<env>.yaml, and `helm template -f values-<env>.yaml` goes
through the same kubeconform step as `kustomize build`.

Cost (docs/benchmarks.md, bench/notes.md): most of a kubeconform run is loading and compiling
the schemas, so every build is written to a file and kubeconform runs once per Kubernetes
version over all of them (`-verbose` lists each object with its file, which gives the
per-target counts). One worker (`-n 1`): kubeconform caches a compiled schema per kind, but
its parallel workers miss that cache together and compile the same schema several times
(about 3x the CPU on our builds). The builds, lints and templates are independent processes
and run on a bounded thread pool (WORKERS); results and messages keep the order of the
sequential loop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from platformgen.checks.kfp_objects import check_kfp_object, is_kfp_object
from platformgen.errors import ToolError
from platformgen.versions import kubernetes_versions

try:  # libyaml's loader when PyYAML has it: much faster on large builds
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

logger = logging.getLogger(__name__)

KUBERNETES_VERSIONS: tuple[str, ...] = kubernetes_versions()
"""The Kubernetes releases every target is validated against (exact patch versions), from
scripts/versions.env, from which scripts/install-tools.sh generates their schemas."""

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
_T = TypeVar("_T")
_R = TypeVar("_R")

WORKERS = min(4, os.cpu_count() or 1)
"""Tool processes run at once (builds, lints, templates, kubeconform): one per CPU, at most 4."""

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


@dataclass(frozen=True)
class _Build:
    """One target's rendered objects, before kubeconform: `kustomize build` or `helm template`."""

    target: str
    manifests: str
    messages: tuple[str, ...]
    built: bool


def bounded_map(work: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """`work` over `items` on the bounded pool, results in the items' order."""
    listed = list(items)
    if len(listed) <= 1:
        return [work(item) for item in listed]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(work, listed))


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
    return validate_platform(root, targets, None, (), kubernetes_versions, tools_dir)


HELM_BINARIES: tuple[str, ...] = ("helm", "helm4")
"""Helm 3 and Helm 4, as scripts/install-tools.sh names them in .tools/bin."""
HELM_MAJOR = {"helm": "Helm 3", "helm4": "Helm 4"}


def validate_chart(
    root: Path,
    chart: str,
    environments: Sequence[str],
    kubernetes_versions: Sequence[str] = KUBERNETES_VERSIONS,
    tools_dir: Path | None = None,
) -> list[TargetResult]:
    """On each Helm major: `helm lint --strict` with values.yaml and with every
    values-<env>.yaml, then `helm template -f values-<env>.yaml` validated like a kustomize
    target. One result per (Helm, environment, Kubernetes version); lint problems count as
    build problems of every target of that Helm."""
    return validate_platform(root, (), chart, environments, kubernetes_versions, tools_dir)


def validate_platform(
    root: Path,
    targets: Sequence[str],
    chart: str | None,
    environments: Sequence[str],
    kubernetes_versions: Sequence[str] = KUBERNETES_VERSIONS,
    tools_dir: Path | None = None,
) -> list[TargetResult]:
    """validate_targets(targets) followed by validate_chart(chart), the results in that order,
    with every build, lint and template on the pool and one kubeconform per Kubernetes version
    for all of them."""
    root = root.absolute()
    tools = (tools_dir if tools_dir is not None else root / ".tools").absolute()
    steps: list[Callable[[], Any]] = []
    if targets:
        kustomize = _tool(tools, "kustomize", root)
        steps += [partial(_kustomize_build, kustomize, root, target) for target in targets]
    kubeconform = _tool(tools, "kubeconform", root)
    schemas = _schemas(tools, kubernetes_versions, root)
    helms = [_tool(tools, name, root) for name in HELM_BINARIES] if chart is not None else []
    for helm in helms:
        assert chart is not None
        steps += [partial(_helm_lint, helm, root, chart, env) for env in [None, *environments]]
        steps += [partial(_helm_template, helm, root, chart, env) for env in environments]
    done = iter(bounded_map(lambda step: step(), steps))

    builds: list[_Build] = []
    for target in targets:
        manifests, build_messages, built = next(done)
        builds.append(_Build(target, manifests, tuple(build_messages), built))
    for helm in helms:
        defaults, *lints = (next(done) for _ in [None, *environments])
        for environment, lint in zip(environments, lints, strict=True):
            manifests, template_messages = next(done)
            messages = tuple(defaults + lint + template_messages)
            target = f"{chart} {environment}, {HELM_MAJOR[helm.name]}"
            builds.append(_Build(target, manifests, messages, not messages))
    return _validate_builds(kubeconform, schemas, builds, kubernetes_versions)


def _validate_builds(
    kubeconform: Path, schemas: Path, builds: list[_Build], versions: Sequence[str]
) -> list[TargetResult]:
    """One result per (build, version), in that order: kubeconform once per version."""
    parsed = [_documents(b.manifests) for b in builds]
    kinds = [_kinds(documents) for documents in parsed]
    kfp = [_kfp_problems(documents) for documents in parsed]
    with tempfile.TemporaryDirectory(prefix="platformgen-validate-") as temp:
        files: dict[int, Path] = {}
        for i, build in enumerate(builds):
            if build.manifests.strip():
                files[i] = Path(temp, f"{i}.yaml")
                files[i].write_text(build.manifests, encoding="utf-8")
        checked = bounded_map(
            lambda version: _kubeconform(kubeconform, schemas, version, builds, kinds, files),
            versions,
        )
    return [_with_kfp(by_version[i], kfp[i]) for i in range(len(builds)) for by_version in checked]


def _values_args(chart: str, environment: str | None) -> list[str]:
    return [] if environment is None else ["-f", f"{chart}/values-{environment}.yaml"]


def _helm_lint(helm: Path, root: Path, chart: str, environment: str | None) -> list[str]:
    """Problems `helm lint --strict` reports (none when it passes)."""
    logger.info("%s lint --strict %s %s", helm.name, chart, environment or "(defaults)")
    process = run_tool(
        [str(helm), "lint", "--strict", chart, *_values_args(chart, environment)], cwd=root
    )
    if process.returncode == 0:
        return []
    values = f"values-{environment}.yaml" if environment else "values.yaml"
    found = [
        f"{helm.name} lint --strict {chart} ({values}): {line.strip()}"
        for line in (process.stdout + process.stderr).splitlines()
        if "[ERROR]" in line or "[WARNING]" in line or line.startswith("Error")
    ]
    return found or [
        f"{helm.name} lint --strict {chart} ({values}): exit status {process.returncode}"
    ]


def _helm_template(helm: Path, root: Path, chart: str, environment: str) -> tuple[str, list[str]]:
    logger.info("%s template %s -f values-%s.yaml", helm.name, chart, environment)
    process = run_tool(
        [str(helm), "template", "platformgen-validate", chart, *_values_args(chart, environment)],
        cwd=root,
    )
    messages = _stderr_messages(
        process,
        f"{helm.name} template {chart} (values-{environment}.yaml)",
        f"{helm.name} template {chart}",
    )
    return (process.stdout if process.returncode == 0 else ""), messages


def _documents(manifests: str) -> list[Any]:
    """The YAML documents of a build, parsed once for the kinds and the KFP checks."""
    return list(yaml.load_all(manifests, Loader=_Loader))


def _kfp_problems(documents: list[Any]) -> list[str]:
    """Problems in the pipeline IR of the KFP objects in `documents` (kubeconform validates
    the objects against the vendored upstream CRDs; the IR inside is free-form there)."""
    return [p for d in documents if d and is_kfp_object(d) for p in check_kfp_object(d)]


def _with_kfp(result: TargetResult, problems: list[str]) -> TargetResult:
    if not problems:
        return result
    invalid = min(len({p.split(":", 1)[0] for p in problems}), result.valid)
    return replace(
        result,
        valid=result.valid - invalid,
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


def _stderr_messages(
    process: subprocess.CompletedProcess[str], prefix: str, command: str
) -> list[str]:
    """A tool's stderr lines, each after `prefix`; its exit status if it failed silently."""
    messages = [f"{prefix}: {line.strip()}" for line in process.stderr.splitlines() if line.strip()]
    if process.returncode != 0 and not messages:
        messages.append(f"{command}: exit status {process.returncode}")
    return messages


def run_tool(
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
    process = run_tool([str(kustomize), "build", str(root / target)], cwd=root)
    messages = _stderr_messages(process, f"kustomize build {target}", f"kustomize build {target}")
    built = process.returncode == 0 and not messages
    return (process.stdout if process.returncode == 0 else ""), messages, built


def _kinds(documents: list[Any]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for document in documents:
        if isinstance(document, dict):
            counts[str(document.get("kind", "<no kind>"))] += 1
    return dict(sorted(counts.items()))


def _kubeconform(
    kubeconform: Path,
    schemas: Path,
    version: str,
    builds: list[_Build],
    kinds: list[dict[str, int]],
    files: dict[int, Path],
) -> list[TargetResult]:
    """One result per build for `version`: one kubeconform process over every build's file
    (`files`: build index -> its manifests; a build without objects has none)."""
    found: dict[str, list[dict[str, Any]]] = {str(path): [] for path in files.values()}
    stderr: list[str] = []
    if files:
        logger.info(
            "kubeconform %s for Kubernetes %s",
            ", ".join(builds[i].target for i in files),
            version,
        )
        process = run_tool(
            kubeconform_command(kubeconform, schemas, version, [str(p) for p in files.values()]),
            cwd=schemas,
        )
        report = _report(process)
        for resource in report.get("resources") or []:
            filename = str(resource.get("filename", ""))
            if filename not in found:
                raise ToolError(f"kubeconform reported a resource of an unknown file {filename!r}")
            found[filename].append(resource)
        counted = Counter(str(r.get("status")) for entries in found.values() for r in entries)
        summary = report["summary"]
        if any(counted[status] != int(summary[key]) for key, status in _STATUS.items()):
            raise ToolError(f"kubeconform's summary {summary} does not match its listed resources")
        stderr = [f"kubeconform: {line.strip()}" for line in process.stderr.splitlines()]
        stderr = [line for line in stderr if line != "kubeconform: "]
    results: list[TargetResult] = []
    for i, build in enumerate(builds):
        messages = list(build.messages)
        if i not in files:
            if build.built:
                messages.append(f"kustomize build {build.target}: rendered no objects")
            results.append(
                TargetResult(
                    build.target, version, 0, 0, 0, 0, 0, tuple(messages), kinds[i], build.built
                )
            )
            continue
        entries = found[str(files[i])]
        for resource in entries:
            if resource.get("status") in ("statusInvalid", "statusError"):
                messages.extend(_resource_messages(resource, schemas))
        messages.extend(stderr)
        count = Counter(str(r.get("status")) for r in entries)
        valid, invalid = count["statusValid"], count["statusInvalid"]
        errors, skipped = count["statusError"], count["statusSkipped"]
        results.append(
            TargetResult(
                target=build.target,
                kubernetes_version=version,
                resources=valid + invalid + errors + skipped,
                valid=valid,
                invalid=invalid,
                errors=errors,
                skipped=skipped,
                messages=tuple(messages),
                kinds=kinds[i],
                built=build.built,
            )
        )
    return results


def kubeconform_command(
    kubeconform: Path | str, schemas: Path, version: str, inputs: Sequence[str]
) -> list[str]:
    """kubeconform over `inputs` (files, or "-" for stdin) for one Kubernetes version: strict,
    offline schemas only, every object listed with its file (`-verbose`), one worker (see the
    module doc). bench/ runs the same command."""
    return [
        str(kubeconform),
        "-strict",
        "-summary",
        "-verbose",
        "-n",
        "1",
        "-output",
        "json",
        "-kubernetes-version",
        version,
        "-schema-location",
        str(schemas / CORE_SCHEMA_LOCATION),
        "-schema-location",
        str(schemas / CRD_SCHEMA_LOCATION),
        *inputs,
    ]


_STATUS = {
    "valid": "statusValid",
    "invalid": "statusInvalid",
    "errors": "statusError",
    "skipped": "statusSkipped",
}
"""kubeconform's summary keys and the status each resource of that count carries."""


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
