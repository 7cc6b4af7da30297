"""`platformgen diff` against the real apiserver: in sync right after apply, drift after a
manual `kubectl scale`, and orphans after a component is removed from the spec.

The command dry-runs a server-side apply of every object through the official Kubernetes
client, so what it reports is the apiserver's own answer (defaulting, field ownership)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import Applied
from .kube import PLATFORMGEN, ROOT, Cluster, identity, load_documents
from .kube import restore as restore_render
from .test_apply import removable_component, render_copy, without_component

pytestmark = pytest.mark.tools


def platformgen_diff(
    cluster: Cluster, env: str, spec: Path = ROOT / "platform.yaml"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(PLATFORMGEN),
            "diff",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--env",
            env,
            "--spec",
            str(spec),
            "--tools-dir",
            str(ROOT / ".tools"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def lines(result: subprocess.CompletedProcess[str], status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{status} ")]


@pytest.fixture
def restore(cluster: Cluster, applied: Applied, rendered: str) -> Iterator[None]:
    """Undo the hand edit as a GitOps controller would: apply, taking the fields back."""
    yield
    restore_render(cluster, rendered, force_conflicts=True)


def test_in_sync_right_after_apply(cluster: Cluster, applied: Applied, env: str) -> None:
    result = platformgen_diff(cluster, env)
    assert result.returncode == 0, result.stdout + result.stderr
    unchanged = lines(result, "unchanged")
    assert len(unchanged) == len(applied.documents), result.stdout
    assert result.stdout.splitlines()[-1].startswith("in sync: 0 created, 0 changed")


def test_manual_change_is_reported_as_drift(
    cluster: Cluster, applied: Applied, env: str, restore: None
) -> None:
    """`kubectl scale` where the repo sets the replica count; where an autoscaler owns it
    (prod), a hand edit of a field the repo sets (`kubectl patch` of revisionHistoryLimit)."""
    deployments = [d for d in applied.documents if d["kind"] == "Deployment"]
    assert deployments, "no rendered Deployment"
    scalable = [d for d in deployments if "replicas" in d["spec"]]
    deployment = (scalable or deployments)[0]
    meta = deployment["metadata"]
    where = ["-n", meta["namespace"]]
    if scalable:
        replicas = deployment["spec"]["replicas"] + 3
        cluster.kubectl("scale", "deployment", meta["name"], *where, f"--replicas={replicas}")
        field = "spec.replicas"
    else:
        patch = '{"spec": {"revisionHistoryLimit": 9}}'
        cluster.kubectl("patch", "deployment", meta["name"], *where, "--type=merge", "-p", patch)
        field = "spec.revisionHistoryLimit"
    result = platformgen_diff(cluster, env)
    assert result.returncode == 1, result.stdout + result.stderr
    changed = lines(result, "changed  ")
    assert changed == [f"changed    Deployment {meta['namespace']}/{meta['name']}: {field}"]
    assert result.stdout.splitlines()[-1].startswith("out of sync: 0 created, 1 changed")


def test_removed_component_is_reported_as_orphans(
    cluster: Cluster, applied: Applied, env: str, tmp_path: Path
) -> None:
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    victim = removable_component(spec)
    trimmed = render_copy(without_component(spec, victim), tmp_path / "trimmed", env)
    gone = {identity(d) for d in applied.documents} - {identity(d) for d in load_documents(trimmed)}
    assert gone, f"removing {victim!r} removed nothing"
    result = platformgen_diff(cluster, env, tmp_path / "trimmed" / "platform.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    reported = {
        (line.split()[1], line.split()[2].split(" ")[0]) for line in lines(result, "orphan   ")
    }
    expected = {(kind, f"{ns}/{name}" if ns else name) for _, kind, ns, name in gone}
    assert reported == expected, result.stdout
    assert not lines(result, "changed  ") and not lines(result, "created  "), result.stdout
