"""The chart as a product: a version that follows its content, cross-field checks that fail
the install with a clear message (real Helm 3 and 4), the `helm test` hook, the README, and
`helm lint --strict`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from platformgen.build import build
from platformgen.emit.helm import emit_helm
from platformgen.emit.helm.chart import chart_version
from platformgen.emit.helm.values import KNOB_DOCS
from platformgen.spec.load import load_spec

from support import ROOT, tool

pytestmark = pytest.mark.tools

HELM_BINARIES = ("helm", "helm4")
CHART = ROOT / "charts" / "mlp"


def chart_files(spec_path: Path) -> dict[str, str]:
    spec = load_spec(spec_path)
    prefix = f"charts/{spec.platform.name}/"
    return {path.removeprefix(prefix): text for path, text in emit_helm(build(spec)).items()}


def version(files: dict[str, str]) -> str:
    return str(yaml.safe_load(files["Chart.yaml"])["version"])


def test_version_is_the_release_plus_a_content_digest() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text())
    assert meta["appVersion"] == raw["defaults"]["imageTag"]
    core, _, digest = meta["version"].partition("+")
    assert core == raw["defaults"]["imageTag"] and len(digest) == 12, meta["version"]
    assert chart_version("v1.2.3", "ab") == "1.2.3+ab"
    assert chart_version("1.2.3-rc.1", "ab") == "1.2.3-rc.1+ab"
    assert chart_version("latest", "ab") == "0.0.0+ab"


def _edited(tmp_path: Path, edit: str, old: str, new: str) -> dict[str, str]:
    text = (ROOT / "platform.yaml").read_text()
    assert text.count(old) >= 1, old
    spec = tmp_path / f"{edit}.yaml"
    spec.write_text(text.replace(old, new, 1))
    return chart_files(spec)


def test_version_changes_whenever_a_template_or_the_schema_changes(tmp_path: Path) -> None:
    """The bump rule: a change to any template or to the values schema is a new version; the
    same spec is the same version."""
    same = chart_files(ROOT / "platform.yaml")
    assert version(same) == version(chart_files(ROOT / "platform.yaml"))
    template = _edited(tmp_path, "template", "--max-batch-size=32", "--max-batch-size=16")
    changed = [p for p in template if template[p] != same[p] and p.startswith("templates/")]
    assert changed, "the edit should change a template"
    assert version(template) != version(same)
    # A component's description: only the values' docs and schema change, no template.
    schema = _edited(tmp_path, "schema", "description: Counts served", "description: Counts all")
    assert schema["values.schema.json"] != same["values.schema.json"]
    assert all(schema[p] == same[p] for p in same if p.startswith("templates/"))
    assert version(schema) != version(same)
    # A new release: appVersion and the version's core follow it.
    release = _edited(tmp_path, "release", "imageTag: 0.1.0", "imageTag: 0.2.0")
    assert yaml.safe_load(release["Chart.yaml"])["appVersion"] == "0.2.0"
    assert version(release).startswith("0.2.0+")


def template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool(helm)), "template", "mlp", str(CHART), *args],
        capture_output=True,
        text=True,
        check=False,
    )


REJECTIONS = {
    "replicas": (
        ["-f", "values-prod.yaml", "--set", "components.drift-monitor.autoscaling.minReplicas=5",
         "--set", "components.drift-monitor.autoscaling.maxReplicas=3"],
        "components.drift-monitor.autoscaling: minReplicas (5) is above maxReplicas (3)",
    ),
    "requests-above-limits": (
        ["--set", "components.drift-monitor.resources.requests.memory=1Gi"],
        "components.drift-monitor.resources: requests.memory (1Gi) is above limits.memory"
        " (256Mi)",
    ),
    "cpu-in-millicores": (
        ["--set", "components.drift-monitor.resources.requests.cpu=1500m"],
        "components.drift-monitor.resources: requests.cpu (1500m) is above limits.cpu (1)",
    ),
    "canary-without-version": (
        ["-f", "values-prod.yaml", "--set", "components.model-server.canary.trafficPercent=10"],
        "components.model-server.canary: trafficPercent (10) without a version",
    ),
}  # fmt: skip


@pytest.mark.parametrize("helm", HELM_BINARIES)
@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_contradicting_values_are_rejected(helm: str, case: str) -> None:
    args, message = REJECTIONS[case]
    args = [str(CHART / a) if a.startswith("values-") else a for a in args]
    result = template(helm, *args)
    assert result.returncode != 0, f"{case}: rendered"
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize("helm", HELM_BINARIES)
def test_the_same_values_within_bounds_render(helm: str) -> None:
    """The gates' other side: values at the bounds render (equal request and limit, min ==
    max, a canary with its version)."""
    result = template(
        helm,
        "-f", str(CHART / "values-prod.yaml"),
        "--set", "components.drift-monitor.autoscaling.minReplicas=3",
        "--set", "components.drift-monitor.autoscaling.maxReplicas=3",
        "--set", "components.drift-monitor.resources.requests.memory=256Mi",
        "--set", "components.drift-monitor.resources.requests.cpu=1000m",
        "--set", "components.model-server.canary.trafficPercent=10",
        "--set", "components.model-server.canary.version=4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("helm", HELM_BINARIES)
def test_lint_strict_is_clean(helm: str) -> None:
    for values in ("values.yaml", "values-dev.yaml", "values-prod.yaml"):
        result = subprocess.run(
            [str(tool(helm)), "lint", "--strict", str(CHART), "-f", str(CHART / values)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize("helm", HELM_BINARIES)
def test_helm_test_hook_asks_the_model_server_for_v2_readiness(helm: str) -> None:
    """`helm template` shows the hook (it is skipped with --skip-tests, as the release's
    objects never include it): a restricted Pod and the two policies that let it through."""
    out = template(helm, "-f", str(CHART / "values-prod.yaml")).stdout
    hooks = [
        d
        for d in yaml.safe_load_all(out)
        if d and d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in hooks)
    assert kinds == [
        ("NetworkPolicy", "model-server-test-ready-egress"),
        ("NetworkPolicy", "model-server-test-ready-ingress"),
        ("Pod", "model-server-test-ready"),
    ]
    (pod,) = [d for d in hooks if d["kind"] == "Pod"]
    (container,) = pod["spec"]["containers"]
    assert container["command"][-1].endswith("/v2/health/ready")
    assert "@sha256:" in container["image"]  # prod's pinned image of the model server
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    skipped = template(helm, "--skip-tests", "-f", str(CHART / "values-prod.yaml")).stdout
    assert "helm.sh/hook: test" not in skipped


def test_readme_documents_every_value_with_the_field_docs() -> None:
    readme = (CHART / "README.md").read_text()
    values = (CHART / "values.yaml").read_text()
    for key in ("environment", "logLevel", "replicas", "resources", "autoscaling", "canary"):
        assert f"`{key}`" in readme or f".{key}`" in readme, key
        assert KNOB_DOCS[key] in values
        assert KNOB_DOCS[key].replace("|", "\\|") in readme, key
