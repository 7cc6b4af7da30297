"""Pipeline and PipelineVersion are validated by kubeconform against the vendored upstream
CRDs (crds/kubeflow-pipelines/), like every other kind; the vendored files match PROVENANCE."""

from __future__ import annotations

import hashlib
import re

import pytest

from platformgen.checks.validate import KUBERNETES_VERSIONS, validate_targets

from support import FIXTURES, ROOT, tool

VENDORED = ROOT / "crds" / "kubeflow-pipelines"


def test_vendored_crds_match_their_provenance() -> None:
    provenance = (VENDORED / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S+\.yaml) \| \S+ \| ([0-9a-f]{64}) \|$", provenance, re.M)
    assert {name for name, _ in rows} == {p.name for p in VENDORED.glob("*.yaml")}
    for name, digest in rows:
        assert hashlib.sha256((VENDORED / name).read_bytes()).hexdigest() == digest, name
    assert "commit 7b70c7b95f6832772efd6fd0029a4024491a0f44" in provenance


@pytest.mark.tools
def test_pipeline_objects_are_validated_against_the_upstream_crd() -> None:
    tool("kustomize"), tool("kubeconform")
    schemas = ROOT / ".tools" / "schemas" / "crds" / "pipelines.kubeflow.org"
    assert (schemas / "pipelineversion_v2beta1-strict.json").is_file(), "run `make tools`"
    results = validate_targets(
        FIXTURES / "validate", ["kfp-valid", "kfp-invalid"], tools_dir=ROOT / ".tools"
    )
    assert len(results) == 2 * len(KUBERNETES_VERSIONS)
    for result in results:
        if result.target == "kfp-valid":
            assert result.ok, result.messages
            assert (result.resources, result.valid) == (2, 2)
            continue
        assert not result.ok
        assert (result.resources, result.invalid) == (2, 2), result.messages
        text = "\n".join(result.messages)
        assert "PipelineVersion demo-v1 (pipelines.kubeflow.org/v2beta1)" in text
        assert "missing property 'pipelineSpec'" in text
        assert "versionName" in text
        assert "Pipeline demo (pipelines.kubeflow.org/v2beta1)" in text
        assert "'steps' not allowed" in text
