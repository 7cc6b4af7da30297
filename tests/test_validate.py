"""platformgen.checks.validate with the real kustomize and kubeconform on small kustomizations.

The fixtures under tests/fixtures/validate/ are one kustomize directory per case. All cases
are validated in one call per module (a kustomize build and two kubeconform runs each), and
the tests read the results, so the whole file costs a few seconds. The last tests pin the
strictness rules of the schema converter (scripts/schemas/openapi.py) that made the schemas.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from platformgen.checks.validate import KUBERNETES_VERSIONS, TargetResult, validate_targets
from platformgen.errors import ToolError

from support import FIXTURES, ROOT, tool, unavailable

CASES = FIXTURES / "validate"
TOOLS = ROOT / ".tools"
TARGETS = ("valid", "invalid-field", "unknown-kind", "deprecated-field", "does-not-exist")


def require_toolchain() -> None:
    """The pinned binaries and schemas: fail in CI, skip elsewhere, when absent."""
    tool("kustomize")
    tool("kubeconform")
    for version in KUBERNETES_VERSIONS:
        schemas = TOOLS / "schemas" / "kubernetes" / f"v{version}-standalone-strict"
        if not schemas.is_dir():
            unavailable(f"Kubernetes {version} schemas are not in .tools/schemas: run `make tools`")


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], TargetResult]:
    require_toolchain()
    found = validate_targets(CASES, TARGETS, tools_dir=TOOLS)
    return {(r.target, r.kubernetes_version): r for r in found}


def each_version(results: dict[tuple[str, str], TargetResult], target: str) -> list[TargetResult]:
    return [results[(target, version)] for version in KUBERNETES_VERSIONS]


def test_versions_are_exact_patch_releases() -> None:
    assert len(KUBERNETES_VERSIONS) == 2
    assert [v.split(".")[:2] for v in KUBERNETES_VERSIONS] == [["1", "35"], ["1", "36"]]
    assert all(len(v.split(".")) == 3 for v in KUBERNETES_VERSIONS)


@pytest.mark.tools
def test_results_come_in_target_then_version_order(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    assert list(results) == [(t, v) for t in TARGETS for v in KUBERNETES_VERSIONS]


@pytest.mark.tools
def test_core_and_crd_objects_pass_for_every_version(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    for result in each_version(results, "valid"):
        assert result.ok, result.messages
        assert result.built
        assert result.messages == ()
        assert (result.resources, result.valid) == (7, 7)
        assert result.kinds == {
            "Application": 1,
            "Deployment": 1,
            "Experiment": 1,
            "InferenceService": 1,
            "PrometheusRule": 1,
            "Service": 1,
            "ServiceMonitor": 1,
        }


@pytest.mark.tools
def test_type_errors_and_unknown_fields_fail_naming_the_object(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    for result in each_version(results, "invalid-field"):
        assert not result.ok
        assert result.built
        assert (result.resources, result.invalid, result.valid) == (3, 3, 0)
        text = "\n".join(result.messages)
        # core kind, type error
        assert "Deployment training-api (apps/v1): at '/spec/replicas'" in text
        assert "want integer" in text
        # CRD kind, unknown field (strict)
        assert "ServiceMonitor drift-monitor (monitoring.coreos.com/v1)" in text
        assert "'intervall' not allowed" in text
        # CRD kind, unknown metadata field: a custom resource's metadata is ObjectMeta
        assert "Application ml-platform-dev (argoproj.io/v1alpha1): at '/metadata'" in text
        assert "'annotation' not allowed" in text


@pytest.mark.tools
def test_messages_follow_the_build_order(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    # kubeconform runs with one worker over every build at once (validate.py): its messages
    # come in the order of the kustomize output (Deployment, Application, ServiceMonitor),
    # every time, for every version, where parallel workers reported them in any order.
    for result in each_version(results, "invalid-field"):
        subjects = [m.split(" (", 1)[0] for m in result.messages]
        firsts = list(dict.fromkeys(subjects))
        assert firsts == [
            "Deployment training-api",
            "Application ml-platform-dev",
            "ServiceMonitor drift-monitor",
        ]


@pytest.mark.tools
def test_kind_without_schema_is_an_error_never_skipped(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    for result in each_version(results, "unknown-kind"):
        assert not result.ok
        assert (result.valid, result.errors, result.skipped) == (1, 1, 0)
        assert result.kinds == {"ConfigMap": 1, "Widget": 1}
        [message] = result.messages
        assert message.startswith("Widget gadget (widgets.example.com/v1): no schema for")


@pytest.mark.tools
def test_kustomize_deprecation_warning_fails(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    for result in each_version(results, "deprecated-field"):
        assert not result.ok
        assert not result.built
        # the objects themselves are fine: only the warning fails the target
        assert (result.resources, result.valid) == (1, 1)
        assert any("'commonLabels' is deprecated" in m for m in result.messages)


@pytest.mark.tools
def test_kustomize_failure_is_reported_not_raised(
    results: dict[tuple[str, str], TargetResult],
) -> None:
    for result in each_version(results, "does-not-exist"):
        assert not result.ok
        assert not result.built
        assert result.resources == 0
        assert result.kinds == {}
        assert result.messages
        assert all(m.startswith("kustomize build does-not-exist: ") for m in result.messages)


def test_missing_tool_raises_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"^kustomize not found in \.tools/bin: run `make tools`$"):
        validate_targets(tmp_path, ["base"])


@pytest.mark.tools
def test_missing_schemas_raise_tool_error(tmp_path: Path) -> None:
    require_toolchain()
    bin_dir = tmp_path / ".tools" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("kustomize", "kubeconform"):
        (bin_dir / name).symlink_to(TOOLS / "bin" / name)
    with pytest.raises(
        ToolError, match=r"Kubernetes 1\.35\.\d+ schemas not found in \.tools/schemas"
    ):
        validate_targets(tmp_path, ["base"])


@pytest.mark.tools
@pytest.mark.parametrize("version", ["1.35", "v1.35.4", "1.99.0"])
def test_unusable_kubernetes_version_raises_tool_error(version: str) -> None:
    require_toolchain()
    with pytest.raises(ToolError, match=r"Kubernetes version|schemas not found"):
        validate_targets(CASES, ["valid"], kubernetes_versions=[version], tools_dir=TOOLS)


# --- the schema converter's rules (scripts/schemas/openapi.py), no tools needed ---------------


@functools.cache
def load_converter() -> ModuleType:
    path = ROOT / "scripts" / "schemas" / "openapi.py"
    spec = importlib.util.spec_from_file_location("schema_openapi", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def strict(schema: dict[str, Any], refs: set[str] | None = None) -> Any:
    on_ref = refs.add if refs is not None else None
    return load_converter().convert(schema, strict=True, where="test", on_ref=on_ref)


def test_strict_closes_objects_that_list_properties() -> None:
    schema = {
        "type": "object",
        "description": "dropped",
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    assert strict(schema) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"a": {"type": "string"}},
            }
        },
    }


def test_strict_keeps_preserve_unknown_fields_and_maps_open() -> None:
    preserved = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"a": {"type": "string"}},
    }
    labels = {"type": "object", "additionalProperties": {"type": "string"}}
    assert "additionalProperties" not in strict(preserved)
    assert strict(labels) == labels


def test_strict_never_closes_junction_branches() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"properties": {"a": {"minLength": 1}}, "required": ["a"]}],
    }
    branch = strict(schema)["anyOf"][0]
    assert "additionalProperties" not in branch


def test_int_or_string_and_nullable() -> None:
    crd_style = {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
    }
    bare = {"type": "string", "format": "int-or-string"}
    assert strict(crd_style) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert strict(bare) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert strict({"type": "string", "nullable": True}) == {"type": ["string", "null"]}


def test_refs_become_local_definitions_and_allof_wrappers_unwrap() -> None:
    refs: set[str] = set()
    wrapped = {"allOf": [{"$ref": "#/components/schemas/io.k8s.X"}], "description": "d"}
    assert strict(wrapped, refs) == {"$ref": "#/definitions/io.k8s.X"}
    assert refs == {"io.k8s.X"}


def test_unknown_keyword_and_remote_ref_are_errors() -> None:
    converter = load_converter()
    with pytest.raises(converter.ConversionError, match="unknown schema keyword 'if'"):
        strict({"if": {}})
    with pytest.raises(converter.ConversionError, match="unsupported \\$ref"):
        strict({"$ref": "https://example.com/defs.json#/X"}, set())


def test_kind_suffix_matches_kubeconform() -> None:
    kind_suffix = load_converter().kind_suffix
    assert kind_suffix("v1") == "-v1"
    assert kind_suffix("apps/v1") == "-apps-v1"
    assert kind_suffix("monitoring.coreos.com/v1") == "-monitoring-v1"
