"""Day 2 on the real control plane: a re-sync re-runs nothing, and a changed pipeline, image or
config deploys cleanly.

Per environment, on the cluster `conftest.py` starts (etcd, kube-apiserver, controller-manager):

- no rendered Job can be removed behind the sync's back (no TTL; a content-derived name), and
  re-applying every object changes nothing, re-creates nothing and starts no second pod;
- a changed pipeline applies as a new PipelineVersion (the old one is pruned, the Pipeline is
  untouched), with KFP's "pipeline spec is immutable" rule enforced on the apiserver by a
  ValidatingAdmissionPolicy (the cluster has no KFP webhook; the policy states its rule in
  CEL), and that rule proven to bite: changing the spec under the old name is refused;
- a changed image applies without an immutable-field error, the old Job is pruned and the new
  one runs, where re-using the old name is refused by the apiserver's own Job validation;
- a changed config changes the pod template, so the Deployment rolls out a new ReplicaSet.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Applied
from .kube import (
    MANAGED_FIELDS_RESOLUTION,
    ROOT,
    Cluster,
    Manifest,
    apply,
    changed_objects,
    identity,
    kustomize_build,
    load_documents,
    snapshot,
    wait_for_pods,
)
from .kube import restore as restore_render
from .test_apply import GENERATED, render

pytestmark = pytest.mark.tools

CONTENT_NAMED = re.compile(r"^(?P<base>.+)-[0-9]{10}$")
NEW_DIGEST = "sha256:" + "d2" * 32
NAME_LABEL = "app.kubernetes.io/name"

IMMUTABLE_PIPELINE_VERSIONS = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: e2e-pipelineversion-spec-immutable}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [pipelines.kubeflow.org]
        apiVersions: ["*"]
        operations: [UPDATE]
        resources: [pipelineversions]
  validations:
    - expression: object.spec == oldObject.spec
      message: Pipeline spec is immutable
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: e2e-pipelineversion-spec-immutable}
spec:
  policyName: e2e-pipelineversion-spec-immutable
  validationActions: [Deny]
"""
"""KFP's validating webhook refuses any change to a PipelineVersion's spec; this is that rule."""


def of_kind(documents: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in documents if d["kind"] == kind]


def live(cluster: Cluster, doc: Manifest) -> Manifest | None:
    group, kind, namespace, name = identity(doc)
    resource = f"{kind}.{group}" if group else kind
    args = ["get", resource, name, "--ignore-not-found", "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    out = cluster.kubectl(*args).stdout.strip()
    return yaml.safe_load(out) if out else None


def uid(cluster: Cluster, doc: Manifest) -> str:
    found = live(cluster, doc)
    assert found is not None, f"{doc['kind']} {doc['metadata']['name']} is not in the cluster"
    return str(found["metadata"]["uid"])


def wait_gone(cluster: Cluster, doc: Manifest) -> None:
    cluster.wait_for(
        f"{doc['kind']} {doc['metadata']['name']} to be pruned",
        lambda: None if live(cluster, doc) is None else "still there",
    )


@pytest.fixture(scope="module")
def pipeline_versions_immutable(cluster: Cluster, applied: Applied) -> None:
    """Install the KFP immutability rule and wait until the apiserver enforces it."""
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=IMMUTABLE_PIPELINE_VERSIONS)
    versions = of_kind(applied.documents, "PipelineVersion")
    assert versions, "no PipelineVersion in the rendered output"
    probe = copy.deepcopy(versions[0])
    probe["spec"]["description"] = "probe: a changed spec under the same name"

    def enforced() -> str | None:
        result = cluster.kubectl(
            "apply", "--server-side", "--field-manager=e2e-probe", "--force-conflicts",
            "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(probe), check=False,
        )  # fmt: skip
        return None if "Pipeline spec is immutable" in result.stderr else "not enforced yet"

    cluster.wait_for("the PipelineVersion immutability policy", enforced, timeout=60)


@pytest.fixture
def restore(cluster: Cluster, applied: Applied, rendered: str) -> Iterator[None]:
    """Put the environment back (the committed render) after a test that changed it."""
    yield
    restore_render(cluster, rendered)
    settle_reverted_rollouts(cluster)


REVISION = "deployment.kubernetes.io/revision"


def settle_reverted_rollouts(cluster: Cluster) -> None:
    """Delete the ReplicaSets a Deployment no longer runs after the restore.

    A changed pipeline changes the PipelineVersion the drift monitor is told to submit, so the
    test rolls that Deployment; the restore rolls it back. With no kubelet no Pod ever becomes
    available, so the reverted rollout's surge Pod is never scaled away (maxUnavailable 0): a
    finished rollout on a real node would have scaled that ReplicaSet to zero."""

    def revisions_current() -> str | None:
        for d in cluster.get_json("deployments", "-A")["items"]:
            if d.get("status", {}).get("observedGeneration") != d["metadata"]["generation"]:
                return f"Deployment {d['metadata']['name']} not observed yet"
        return None

    cluster.wait_for("every Deployment to observe the restore", revisions_current)
    for d in cluster.get_json("deployments", "-A")["items"]:
        meta = d["metadata"]
        current = meta.get("annotations", {}).get(REVISION)
        for rs in cluster.get_json("replicasets", "-n", meta["namespace"])["items"]:
            owned = any(
                o.get("uid") == meta["uid"] for o in rs["metadata"].get("ownerReferences", [])
            )
            revision = rs["metadata"].get("annotations", {}).get(REVISION)
            if owned and revision != current and rs["spec"].get("replicas", 0) > 0:
                cluster.kubectl(
                    "delete", "replicaset", rs["metadata"]["name"], "-n", meta["namespace"]
                )


def render_changed(
    tmp_path: Path, env: str, change: Callable[[dict[str, Any], Path], None]
) -> list[Manifest]:
    """Render a changed copy of platform.yaml in a folder like the repo; build overlays/<env>."""
    folder = tmp_path / "changed"
    folder.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in GENERATED:
            (folder / entry.name).symlink_to(entry)
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    change(spec, folder)
    (folder / "platform.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    render(folder / "platform.yaml", folder)
    return load_documents(kustomize_build(folder / "overlays" / env))


def as_text(documents: list[Manifest]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def test_no_job_can_be_removed_behind_the_sync(cluster: Cluster, applied: Applied) -> None:
    """No TTL (nothing deletes a finished Job, so no later sync re-creates it) and a name
    derived from the Job's content (an unchanged Job keeps its name in every render)."""
    jobs = of_kind(applied.documents, "Job")
    assert jobs, "no Job in the rendered output"
    for job in jobs:
        name = job["metadata"]["name"]
        match = CONTENT_NAMED.match(name)
        assert match, f"Job {name} is not named <component>-<content hash>"
        assert match["base"] == job["metadata"]["labels"][NAME_LABEL]
        assert "ttlSecondsAfterFinished" not in job["spec"], f"Job {name} has a TTL"
        found = live(cluster, job)
        assert found is not None
        assert "ttlSecondsAfterFinished" not in found["spec"], f"live Job {name} has a TTL"
    for cron in of_kind(applied.documents, "CronJob"):
        # The CronJob owns its Jobs (history limits); Git holds only the CronJob.
        assert "ttlSecondsAfterFinished" not in cron["spec"]["jobTemplate"]["spec"]


def test_a_resync_changes_and_reruns_nothing(
    cluster: Cluster, applied: Applied, rendered: str
) -> None:
    """Apply the same render twice more: no object is deleted and re-created (same uid) or
    rewritten by our applies, and every Job still has exactly the pods it had."""
    jobs = of_kind(applied.documents, "Job")
    for job in jobs:
        wait_for_pods(cluster, job)

    def job_pods(job: Manifest) -> list[str]:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        pods = cluster.get_json("pods", "-n", namespace, "-l", f"job-name={name}")["items"]
        return sorted(p["metadata"]["uid"] for p in pods)

    pods_before = {job["metadata"]["name"]: job_pods(job) for job in jobs}
    before = snapshot(cluster, applied.documents)
    for _ in range(2):
        time.sleep(MANAGED_FIELDS_RESOLUTION)
        assert not apply(cluster, rendered)
    after = snapshot(cluster, applied.documents)
    recreated = [
        k
        for k in before
        if k in after and before[k]["metadata"]["uid"] != after[k]["metadata"]["uid"]
    ]
    assert not recreated, f"a re-sync re-created {recreated}"
    changed = changed_objects(before, after)
    assert not changed, f"a re-sync changed {changed}"
    for job in jobs:
        assert job_pods(job) == pods_before[job["metadata"]["name"]], (
            f"a re-sync started another pod of Job {job['metadata']['name']}"
        )


def test_a_changed_pipeline_applies_as_a_new_pipeline_version(
    cluster: Cluster,
    applied: Applied,
    env: str,
    tmp_path: Path,
    pipeline_versions_immutable: None,
    restore: None,
) -> None:
    [old] = of_kind(applied.documents, "PipelineVersion")
    [pipeline] = of_kind(applied.documents, "Pipeline")
    pipeline_before = live(cluster, pipeline)
    old_uid = uid(cluster, old)

    # The rule bites: the same name with a changed spec is refused, as KFP's webhook does.
    edited = copy.deepcopy(old)
    edited["spec"]["pipelineSpec"]["pipelineInfo"]["description"] = "edited in place"
    refused = cluster.kubectl(
        "apply", "--server-side", "--field-manager=platformgen", "-f", "-",
        stdin=yaml.safe_dump(edited), check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "Pipeline spec is immutable" in refused.stderr

    def change(spec: dict[str, Any], folder: Path) -> None:
        (name, pipeline_spec), *_ = spec["pipelines"].items()
        source = ROOT / pipeline_spec["compiled"]
        documents = load_documents(source.read_text(encoding="utf-8"))
        for doc in documents:
            if doc["kind"] == "PipelineVersion":
                info = doc["spec"]["pipelineSpec"]["pipelineInfo"]
                info["description"] = "day 2: a changed pipeline"
        (folder / "changed.k8s.yaml").write_text(as_text(documents), encoding="utf-8")
        pipeline_spec["compiled"] = "changed.k8s.yaml"

    changed = render_changed(tmp_path, env, change)
    [new] = of_kind(changed, "PipelineVersion")
    assert new["metadata"]["name"] != old["metadata"]["name"]
    assert CONTENT_NAMED.match(new["metadata"]["name"])
    assert of_kind(changed, "Pipeline") == [pipeline], "the Pipeline object must stay stable"

    time.sleep(MANAGED_FIELDS_RESOLUTION)
    assert not apply(cluster, as_text(changed))
    created = live(cluster, new)
    assert created is not None
    assert created["spec"]["pipelineSpec"]["pipelineInfo"]["description"] == (
        "day 2: a changed pipeline"
    )
    assert created["metadata"]["uid"] != old_uid
    wait_gone(cluster, old)
    pipeline_after = live(cluster, pipeline)
    assert pipeline_before is not None and pipeline_after is not None
    assert (
        pipeline_after["metadata"]["resourceVersion"]
        == (pipeline_before["metadata"]["resourceVersion"])
    ), "the Pipeline object was rewritten"


def test_a_changed_image_applies_and_prunes_the_old_job(
    cluster: Cluster, applied: Applied, env: str, tmp_path: Path, restore: None
) -> None:
    jobs = of_kind(applied.documents, "Job")
    assert jobs, "no Job in the rendered output"
    old = jobs[0]
    component = old["metadata"]["labels"][NAME_LABEL]

    # The apiserver refuses a new image under the old name (a Job's template is immutable).
    edited = copy.deepcopy(old)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] += "-changed"
    refused = cluster.kubectl(
        "apply", "--server-side", "--field-manager=platformgen", "--dry-run=server", "-f", "-",
        stdin=yaml.safe_dump(edited), check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "field is immutable" in refused.stderr, refused.stderr

    def change(spec: dict[str, Any], folder: Path) -> None:
        image = spec["components"][component]["image"]
        images = spec["environments"][env].setdefault("images", {})
        for name, c in spec["components"].items():
            if c["image"] == image:  # components sharing the image share its pin
                images[name] = {"digest": NEW_DIGEST}

    changed = render_changed(tmp_path, env, change)
    [new] = [j for j in of_kind(changed, "Job") if j["metadata"]["labels"][NAME_LABEL] == component]
    assert new["metadata"]["name"] != old["metadata"]["name"]
    assert new["spec"]["template"]["spec"]["containers"][0]["image"].endswith("@" + NEW_DIGEST)

    time.sleep(MANAGED_FIELDS_RESOLUTION)
    warnings = apply(cluster, as_text(changed))  # raises on any error, immutable fields included
    assert not warnings, "\n".join(warnings)
    wait_gone(cluster, old)
    assert wait_for_pods(cluster, new) > 0
    remaining = cluster.get_json(
        "jobs", "-n", new["metadata"]["namespace"], "-l", f"{NAME_LABEL}={component}"
    )["items"]
    assert [j["metadata"]["name"] for j in remaining] == [new["metadata"]["name"]]


def test_a_changed_config_rolls_the_pod_template(
    cluster: Cluster, applied: Applied, env: str, tmp_path: Path, restore: None
) -> None:
    deployments = [
        d
        for d in of_kind(applied.documents, "Deployment")
        if d["spec"]["template"]["metadata"]
        .get("annotations", {})
        .get("platformgen.io/config-hash")
    ]
    assert deployments, "no Deployment with a config in the rendered output"
    old = deployments[0]
    name, namespace = old["metadata"]["name"], old["metadata"]["namespace"]
    wait_for_pods(cluster, old)
    sets_before = {
        rs["metadata"]["name"] for rs in cluster.get_json("replicasets", "-n", namespace)["items"]
    }

    def change(spec: dict[str, Any], folder: Path) -> None:
        spec["components"][name].setdefault("config", {})["MLP_DAY2_CHANGE"] = "1"

    changed = render_changed(tmp_path, env, change)
    [new] = [d for d in of_kind(changed, "Deployment") if d["metadata"]["name"] == name]
    old_hash = old["spec"]["template"]["metadata"]["annotations"]["platformgen.io/config-hash"]
    new_hash = new["spec"]["template"]["metadata"]["annotations"]["platformgen.io/config-hash"]
    assert new_hash != old_hash

    time.sleep(MANAGED_FIELDS_RESOLUTION)
    assert not apply(cluster, as_text(changed))
    config_map = cluster.get_json("configmap", name, "-n", namespace)
    assert config_map["data"]["MLP_DAY2_CHANGE"] == "1"

    def rolled() -> str | None:
        sets = cluster.get_json("replicasets", "-n", namespace)["items"]
        fresh = [
            rs
            for rs in sets
            if rs["metadata"]["name"] not in sets_before
            and rs["metadata"]["labels"].get(NAME_LABEL) == name
        ]
        if not fresh:
            return "no new ReplicaSet"
        annotations = fresh[0]["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("platformgen.io/config-hash") != new_hash:
            return "the new ReplicaSet has another config hash"
        return None

    cluster.wait_for(f"Deployment {namespace}/{name} to roll out a new ReplicaSet", rolled)
