"""Apply every rendered environment to a real kube-apiserver and check what only it can tell.

Per environment (one fresh control plane each, see conftest.cluster):
  - the CRDs the output uses are installed from .tools/crds/ (server-side);
  - `kubectl apply --server-side` of `kustomize build overlays/<env>` succeeds with no warning
    (so no "would violate PodSecurity" either), with strict field validation;
  - every Deployment's ReplicaSet and every Job created its Pods: Pod Security `restricted`
    admitted every pod template (CronJobs are instantiated once to prove theirs);
  - a second apply changes nothing (server-side diff empty, resourceVersions unchanged);
  - removing a component from a copy of the spec and applying the re-render with ApplySet
    prune deletes exactly that component's objects and touches nothing else.
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Applied
from .derived import derived_workloads
from .kube import (
    FIELD_MANAGER,
    MANAGED_FIELDS_RESOLUTION,
    PLATFORMGEN,
    ROOT,
    Cluster,
    apply,
    as_applied,
    changed_objects,
    identity,
    kustomize_build,
    load_documents,
    snapshot,
    wait_for_pods,
)
from .kube import restore as restore_render

pytestmark = pytest.mark.tools


def test_apply_is_clean(applied: Applied) -> None:
    """Every object is accepted, with no warning at all (PodSecurity, deprecation, fields)."""
    assert applied.documents, "the rendered output is empty"
    assert not applied.warnings, "apply warned:\n" + "\n".join(applied.warnings)


def test_workloads_created_their_pods(cluster: Cluster, applied: Applied) -> None:
    """ReplicaSets and Jobs created every Pod: PSS `restricted` admitted each pod template."""
    workloads = [d for d in applied.documents if d["kind"] in ("Deployment", "Job", "CronJob")]
    assert workloads, "no Deployment, Job or CronJob in the rendered output"
    admitted_pods = 0
    for workload in workloads:
        admitted_pods += wait_for_pods(cluster, workload)
    assert admitted_pods > 0, "every workload has 0 replicas: Pod Security was never exercised"


def test_custom_resource_pod_templates_are_admitted(cluster: Cluster, applied: Applied) -> None:
    """Pod templates inside custom resources (KServe predictors, Katib trials, Trainer runtimes)
    would be run by controllers this cluster does not have: run them as the workloads those
    controllers create, so Pod Security judges them too."""
    derived = [w for doc in applied.documents for w in derived_workloads(doc)]
    if not derived:
        pytest.skip("no InferenceService, Experiment or TrainingRuntime in this environment")
    text = yaml.safe_dump_all(derived, sort_keys=False)
    try:
        warnings = apply(cluster, text, applyset=None, field_manager="e2e-derived")
        assert not warnings, "\n".join(warnings)
        for workload in derived:
            assert wait_for_pods(cluster, workload) > 0
    finally:
        cluster.kubectl("delete", "--wait=false", "--ignore-not-found", "-f", "-", stdin=text)


def test_second_apply_changes_nothing(cluster: Cluster, applied: Applied, rendered: str) -> None:
    """Re-applying the same output is a no-op: empty server-side diff, no object rewritten."""
    diff = cluster.kubectl(
        "diff",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        "-",
        stdin=as_applied(applied.documents),
        check=False,
    )
    assert diff.returncode == 0, (
        f"server-side diff is not empty (exit {diff.returncode}):\n{diff.stdout}{diff.stderr}"
    )
    before = snapshot(cluster, applied.documents)
    time.sleep(MANAGED_FIELDS_RESOLUTION)
    warnings = apply(cluster, rendered)
    after = snapshot(cluster, applied.documents)
    assert not warnings, "\n".join(warnings)
    changed = changed_objects(before, after)
    assert not changed, "the second apply changed:\n" + "\n".join(
        f"  {k[1]} {k[2]}/{k[3]}: {why}" for k, why in sorted(changed.items())
    )


GENERATED = {"platform.yaml", "base", "overlays", "charts"}


# Kinds to prefer as the removed component: a Deployment also proves its ReplicaSets and Pods go.
REMOVAL_PREFERENCE = ("Deployment", "Job", "CronJob")


def removable_component(spec: dict[str, Any]) -> str:
    """A component no other component names, and that names no component itself, so that
    removing it should change no other object."""
    components: dict[str, Any] = spec["components"]
    referenced = {dep for c in components.values() for dep in c.get("dependsOn", [])}
    candidates = sorted(
        (
            REMOVAL_PREFERENCE.index(c["kind"]) if c["kind"] in REMOVAL_PREFERENCE else 99,
            name,
        )
        for name, c in components.items()
        if name not in referenced and not set(c.get("dependsOn", [])) & set(components)
    )
    assert candidates, "every component in platform.yaml is tied to another; none to remove"
    return candidates[0][1]


def without_component(spec: dict[str, Any], name: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(spec)
    del trimmed["components"][name]
    for environment in trimmed.get("environments", {}).values():
        for key in ("components", "images"):
            environment.get(key, {}).pop(name, None)
    return trimmed


def render_copy(spec: dict[str, Any], folder: Path, env: str) -> str:
    """Render `spec` into `folder` (a stand-in for the repo) and build overlays/<env>."""
    folder.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in GENERATED:
            (folder / entry.name).symlink_to(entry)
    spec_path = folder / "platform.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    render(spec_path, folder)
    return kustomize_build(folder / "overlays" / env)


def render(spec_path: Path, out: Path) -> None:
    result = subprocess.run(
        [str(PLATFORMGEN), "render", "--spec", str(spec_path), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0, f"platformgen render failed:\n{result.stderr}"


@pytest.fixture
def restore(cluster: Cluster, applied: Applied, rendered: str) -> Iterator[None]:
    """Put the full environment back after a test that changed it."""
    yield
    restore_render(cluster, rendered)


def test_prune_removes_only_the_removed_component(
    cluster: Cluster, applied: Applied, env: str, tmp_path: Path, restore: None
) -> None:
    """Drop a component from a copy of the spec, re-render, apply with ApplySet prune:
    exactly that component's objects are deleted and every other object is untouched."""
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    victim = removable_component(spec)
    # Render the spec and the trimmed copy the same way, each in a folder like the repo's
    # (files the spec names by relative path, such as compiled pipelines, resolve) minus the
    # generated roots, so the comparison never depends on how fresh the committed tree is.
    full = render_copy(spec, tmp_path / "full", env)
    trimmed = render_copy(without_component(spec, victim), tmp_path / "trimmed", env)

    old = {identity(d): d for d in load_documents(full)}
    new = {identity(d): d for d in load_documents(trimmed)}
    removed = sorted(set(old) - set(new))
    assert removed, f"removing {victim!r} from the spec removed no object"
    assert set(new) <= set(old), f"removing {victim!r} added objects: {sorted(set(new) - set(old))}"
    changed_in_render = [k for k in new if new[k] != old[k]]
    assert not changed_in_render, (
        f"removing {victim!r} also changed other rendered objects: {changed_in_render}"
    )

    warnings = apply(cluster, full)
    assert not warnings, "\n".join(warnings)
    kept = [new[k] for k in sorted(new)]
    before = snapshot(cluster, kept)
    time.sleep(MANAGED_FIELDS_RESOLUTION)
    warnings = apply(cluster, trimmed)
    assert not warnings, "\n".join(warnings)

    still_there = []
    for group, kind, namespace, name in removed:
        resource = f"{kind}.{group}" if group else kind
        args = ["get", resource, name, "--ignore-not-found", "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        if cluster.kubectl(*args).stdout.strip():
            still_there.append(f"{kind} {namespace}/{name}")
    assert not still_there, f"prune left the removed component's objects: {still_there}"

    after = snapshot(cluster, kept)
    changed = changed_objects(before, after)
    assert not changed, "prune touched objects it should not have:\n" + "\n".join(
        f"  {k[1]} {k[2]}/{k[3]}: {why}" for k, why in sorted(changed.items())
    )
