"""The Argo CD emitter: AppProject, ApplicationSets, sync waves; and its offline validation."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.build import build
from platformgen.checks.validate_argocd import check_schemas, check_sources
from platformgen.emit.argocd import STEP_LABEL, STEPS, SYNC_WAVE_ANNOTATION, emit_argocd
from platformgen.files import write_tree
from platformgen.kinds import SYNC_WAVES
from platformgen.render import generated_roots, render
from platformgen.spec.load import load_pipelines, load_spec, parse_spec

from support import ROOT, SPECS, require_tools, tool

TOOLS = ROOT / ".tools"
CASES = [SPECS / "full.yaml", ROOT / "platform.yaml"]


def _load(files: dict[str, str], path: str) -> Any:
    return yaml.safe_load(files[path])


def _rendered(tmp_path: Path, spec_path: Path = SPECS / "full.yaml") -> Path:
    files = render(load_spec(spec_path))
    write_tree(tmp_path, files, generated_roots(files))
    return tmp_path


def test_no_gitops_section_no_argocd_folder() -> None:
    assert emit_argocd(build(load_spec(SPECS / "minimal.yaml"))) == {}


@pytest.mark.parametrize("spec_path", CASES, ids=lambda p: p.stem)
def test_application_sets(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    assert spec.gitops is not None
    files = emit_argocd(build(spec))
    project = _load(files, "argocd/app-project.yaml")
    assert project["spec"]["sourceRepos"] == [spec.gitops.repo_url]
    # Every namespace the platform renders into: its own and its tenants'.
    namespaces = set(spec.namespaces) | set(spec.tenancy.tenants)
    assert {d["namespace"] for d in project["spec"]["destinations"]} == namespaces
    # Cluster-scoped objects by name: each platform and tenant Namespace and the tenant roles,
    # never any Namespace (kube-system is one too).
    allowed = project["spec"]["clusterResourceWhitelist"]
    assert all(entry.get("name") for entry in allowed), allowed
    assert {e["name"] for e in allowed if e["kind"] == "Namespace"} == namespaces
    assert {e["kind"] for e in allowed} <= {"Namespace", "ClusterRole"}
    assert project["spec"]["orphanedResources"] == {"warn": True}
    for env in spec.environments:
        appset = _load(files, f"argocd/{env}/application-set.yaml")
        assert appset["spec"]["goTemplate"] is True
        assert appset["spec"]["goTemplateOptions"] == ["missingkey=error"]
        # Deleting the ApplicationSet or an Application never deletes what it deployed.
        assert appset["spec"]["syncPolicy"] == {"preserveResourcesOnDeletion": True}
        template = appset["spec"]["template"]
        assert "finalizers" not in template["metadata"]
        policy = template["spec"]["syncPolicy"]
        assert policy["syncOptions"] == ["ServerSideApply=true"]
        cluster = spec.gitops.clusters.get(env)
        if cluster is not None and cluster.auto_sync:
            assert policy["automated"] == {"prune": True, "selfHeal": True}
        else:
            assert "automated" not in policy
        elements = appset["spec"]["generators"][0]["list"]["elements"]
        groups = _load(files_of_kustomize(spec_path), f"overlays/{env}/kustomization.yaml")
        assert [e["group"] for e in elements] == groups["resources"]
        assert all(e["path"] == f"overlays/{env}/{e['group']}" for e in elements)


def files_of_kustomize(spec_path: Path) -> dict[str, str]:
    return render(load_spec(spec_path))


def test_platform_yaml_dev_syncs_automatically_and_prod_by_hand() -> None:
    files = emit_argocd(build(load_spec(ROOT / "platform.yaml")))
    dev = _load(files, "argocd/dev/application-set.yaml")["spec"]["template"]["spec"]
    prod = _load(files, "argocd/prod/application-set.yaml")["spec"]["template"]["spec"]
    assert dev["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "automated" not in prod["syncPolicy"]


def test_helm_switch_points_at_the_chart_with_the_environment_values() -> None:
    raw = yaml.safe_load((SPECS / "full.yaml").read_text())
    raw["gitops"]["source"] = "helm"
    spec = parse_spec(yaml.safe_dump(raw))
    files = emit_argocd(build(spec))
    for env in spec.environments:
        appset = _load(files, f"argocd/{env}/application-set.yaml")
        [element] = appset["spec"]["generators"][0]["list"]["elements"]
        assert element["path"] == f"charts/{spec.platform.name}"
        source = appset["spec"]["template"]["spec"]["source"]
        assert source["helm"]["valueFiles"] == [f"values-{env}.yaml"]
        assert "kustomize" not in source


def test_every_rendered_kind_has_a_sync_wave() -> None:
    """emit_argocd refuses kinds without a wave; every spec case renders, so all have one."""
    for spec_path in [*CASES, *sorted(SPECS.glob("*.yaml"))]:
        render(load_spec(spec_path))
    assert SYNC_WAVES["Namespace"] < SYNC_WAVES["ServiceAccount"] < SYNC_WAVES["Service"]
    assert SYNC_WAVES["Service"] < SYNC_WAVES["ServiceMonitor"] < SYNC_WAVES["Deployment"]
    workloads = ("Deployment", "Job", "CronJob", "InferenceService", "Experiment")
    assert {SYNC_WAVES[k] for k in workloads} == {max(SYNC_WAVES.values())}


@pytest.mark.tools
def test_sync_wave_component_only_adds_the_wave_annotation(tmp_path: Path) -> None:
    root = _rendered(tmp_path)
    kustomize = str(tool("kustomize"))
    folder = root / "overlays" / "prod" / "gateway-api"
    plain = subprocess.run([kustomize, "build", str(folder)], capture_output=True, text=True)
    subprocess.run(
        [kustomize, "edit", "add", "component", "../../../argocd/sync-waves"],
        cwd=folder,
        check=True,
    )
    waved = subprocess.run([kustomize, "build", str(folder)], capture_output=True, text=True)
    before = [d for d in yaml.safe_load_all(plain.stdout) if d]
    after = [d for d in yaml.safe_load_all(waved.stdout) if d]
    assert len(before) == len(after) > 3
    for b, a in zip(before, after, strict=True):
        annotations = a["metadata"].pop("annotations")
        assert annotations.pop(SYNC_WAVE_ANNOTATION) == str(SYNC_WAVES[a["kind"]])
        if annotations:
            a["metadata"]["annotations"] = annotations
        assert a == b


@pytest.mark.tools
@pytest.mark.parametrize("spec_path", CASES, ids=lambda p: p.stem)
def test_argocd_objects_valid_and_every_source_builds(spec_path: Path, tmp_path: Path) -> None:
    require_tools("kubeconform", "kustomize")
    root = _rendered(tmp_path, spec_path)
    objects, problems = check_schemas(root, TOOLS)
    assert (objects, problems) == (3, [])
    sources, problems = check_sources(root, TOOLS)
    assert problems == []
    assert sources == sum(
        len(yaml.safe_load(p.read_text())["resources"])
        for p in sorted((root / "overlays").glob("*/kustomization.yaml"))
    )


def _edit(path: Path, change: Any) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))


@pytest.mark.tools
def test_schema_check_fails_on_a_broken_application_set(tmp_path: Path) -> None:
    require_tools("kubeconform")
    root = _rendered(tmp_path)
    _edit(
        root / "argocd/dev/application-set.yaml",
        lambda d: d["spec"]["template"]["spec"].update(sourcePath="overlays/dev"),
    )
    _, problems = check_schemas(root, TOOLS)
    assert len(problems) == 1 and "sourcePath" in problems[0], problems


@pytest.mark.tools
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("missing", "source.path 'overlays/dev/nowhere' is not a folder of the repository"),
        ("not-building", "kustomize build overlays/dev/gateway-api: Error"),
        ("no-kustomization", "has neither kustomization.yaml nor Chart.yaml"),
        ("template-key", "{{.folder}}: no such key in the generator element"),
    ],
)
def test_source_check_fails(tmp_path: Path, damage: str, expected: str) -> None:
    require_tools("kustomize")
    root = _rendered(tmp_path)
    appset = root / "argocd/dev/application-set.yaml"
    if damage == "missing":
        _edit(
            appset,
            lambda d: d["spec"]["generators"][0]["list"]["elements"][0].update(
                path="overlays/dev/nowhere"
            ),
        )
    elif damage == "not-building":
        (root / "overlays/dev/gateway-api/kustomization.yaml").write_text("resources: [missing]\n")
    elif damage == "no-kustomization":
        (root / "overlays/dev/gateway-api/kustomization.yaml").unlink()
    else:
        _edit(appset, lambda d: d["spec"]["template"]["spec"]["source"].update(path="{{.folder}}"))
    _, problems = check_sources(root, TOOLS)
    assert len(problems) >= 1 and all(
        p.startswith("argocd/dev/application-set.yaml") for p in problems
    )
    assert any(expected in p for p in problems), problems


@pytest.mark.tools
def test_source_problems_come_in_the_applications_order(tmp_path: Path) -> None:
    """Sources are built in parallel (one folder per worker); the report keeps the order of the
    Applications, so the same damage gives the same output every time."""
    require_tools("kustomize")
    root = _rendered(tmp_path)
    elements = yaml.safe_load((root / "argocd/dev/application-set.yaml").read_text())["spec"][
        "generators"
    ][0]["list"]["elements"]
    folders = [str(e["path"]) for e in elements]
    assert len(folders) >= 3
    for folder in folders:
        (root / folder / "kustomization.yaml").write_text("resources: [missing]\n")
    _, problems = check_sources(root, TOOLS)
    assert [p.split("kustomize build ", 1)[1].split(":", 1)[0] for p in problems] == folders


def test_every_application_uses_server_side_diff_and_carries_its_step() -> None:
    spec = load_spec(ROOT / "platform.yaml")
    files = emit_argocd(build(spec))
    for env in spec.environments:
        template = _load(files, f"argocd/{env}/application-set.yaml")["spec"]["template"]
        assert template["metadata"]["annotations"] == {
            "argocd.argoproj.io/compare-options": "ServerSideDiff=true"
        }
        assert template["metadata"]["labels"][STEP_LABEL] == "{{.step}}"
        assert "ignoreDifferences" not in template["spec"]


def test_progressive_environment_syncs_in_rolling_sync_steps() -> None:
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    raw["gitops"]["clusters"]["dev"] = {"progressive": True}
    spec = parse_spec(yaml.safe_dump(raw))
    files = emit_argocd(build(spec, load_pipelines(spec, ROOT)))
    appset = _load(files, "argocd/dev/application-set.yaml")
    steps = appset["spec"]["strategy"]["rollingSync"]["steps"]
    assert [s["matchExpressions"][0]["values"] for s in steps] == [[s] for s in STEPS]
    elements = appset["spec"]["generators"][0]["list"]["elements"]
    by_step = {e["group"]: e["step"] for e in elements}
    assert by_step["platform"] == "platform"
    assert by_step["mlp-training"] == "configuration"  # Pipeline, PipelineVersion, ConfigMap
    assert by_step["drift-monitor"] == "workloads"
    # Every Application is in a step (one in no step would never be synced).
    assert set(by_step.values()) <= set(STEPS)
    # RollingSync reads prune from the template; selfHeal would be ignored.
    assert appset["spec"]["template"]["spec"]["syncPolicy"]["automated"] == {"prune": True}
    prod = _load(files, "argocd/prod/application-set.yaml")
    assert "strategy" not in prod["spec"]
