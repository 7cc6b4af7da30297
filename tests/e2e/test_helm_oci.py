"""The chart as a published product, on the real apiserver, with Helm 3 and Helm 4:

1. `helm package` the chart and `helm push` it to a real OCI registry (the CNCF distribution
   registry, `make registry-tools`, on 127.0.0.1 with storage in a pytest temp dir);
2. `helm install oci://127.0.0.1:<port>/charts/mlp --version <Chart.yaml version>` with the
   environment's values;
3. a spec change (the initial training Job's deadline: new content, so a new content-named Job)
   is rendered, packaged under its new version (the content digest changed), pushed, and
   `helm upgrade`d to;
4. `helm rollback` to the first revision.

A rollback must not run training again. How: content-named Jobs carry
`helm.sh/resource-policy: keep` in the chart, so the upgrade leaves the replaced Job (finished,
or running to its end) where it is, and the rollback, whose manifest holds that same Job under
the same content name, finds it in place and creates nothing; the Job controller never starts
a new Pod. The proof is the live objects: the set of Jobs and their UIDs, and the Pods the Job
controller made for them, are the same after the rollback as before it, and the release is
`deployed` at revision 3, on Helm 3 and on Helm 4.

Two controls, each the same flow on a chart with one part of that answer taken out:
- without the keep policy, the upgrade deletes the replaced Job and the rollback creates it
  again under its old name (a new UID): it would train again;
- with the Jobs as rendered before they selected their own Pods (no `manualSelector`, no
  `selector`, no job-name pod labels: the apiserver generates a selector on the UID), Helm 3's
  rollback fails. Helm 3 patches an object its current release does not list with the live
  object as the baseline (pkg/kube/client.go, "using cluster state as baseline"), so its patch
  deletes the generated selector and pod labels, and the apiserver refuses it ("field is
  immutable"). The builder (builders/job.py `select_own_pods`) renders what the apiserver would
  otherwise generate, so the live Job holds nothing there that the manifest lacks.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .kube import (
    CONTROL_PLANE,
    ROOT,
    TOOLS_BIN,
    Cluster,
    control_plane,
    install_crds,
    load_documents,
    require_tools,
)
from .test_apply import render_copy
from support import oci_registry

pytestmark = pytest.mark.tools


ENVIRONMENT = "dev"
HELM_BINARIES = ("helm", "helm4")
RELEASE = "mlp"
NAMESPACE = "ml-pipelines"
KEEP = "helm.sh/resource-policy: keep"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A distribution registry on a free loopback port, stopped by PID afterwards."""
    with oci_registry(tmp_path_factory.mktemp("oci-registry")) as address:
        yield address


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tools(*CONTROL_PLANE, *HELM_BINARIES)
    with control_plane(tmp_path_factory.mktemp("cluster-helm-oci")) as cluster:
        yield cluster


class Helm:
    """One Helm binary with its config, cache and data in a temp dir (never ~/.config)."""

    def __init__(self, binary: str, home: Path, cluster: Cluster) -> None:
        self.binary, self.cluster = binary, cluster
        self.env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(TOOLS_BIN / self.binary), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=False,
            env=self.env,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, f"{self.binary} {' '.join(args)}:\n{result.stderr}"
        return result

    def publish(self, chart: Path, registry: str, out: Path) -> str:
        """`helm package` + `helm push`; the chart's version."""
        version = str(yaml.safe_load((chart / "Chart.yaml").read_text())["version"])
        out.mkdir(parents=True, exist_ok=True)
        self.run("package", str(chart), "--destination", str(out))
        (package,) = out.glob(f"{chart.name}-{version}.tgz")
        self.run("push", str(package), f"oci://{registry}/charts", "--plain-http")
        return version


def jobs(cluster: Cluster) -> dict[str, str]:
    """name -> UID of every Job in the pipelines namespace."""
    found = yaml.safe_load(cluster.kubectl("get", "jobs", "-n", NAMESPACE, "-o", "yaml").stdout)
    return {j["metadata"]["name"]: j["metadata"]["uid"] for j in found["items"]}


def job_pods(cluster: Cluster) -> set[str]:
    """UIDs of the Pods the Job controller made (no kubelet: they stay Pending, but they are
    what a run of training is)."""
    found = yaml.safe_load(
        cluster.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "batch.kubernetes.io/job-name", "-o", "yaml"
        ).stdout
    )
    return {p["metadata"]["uid"] for p in found["items"]}


def without_keep(template: str) -> str:
    return template.replace(f"    {KEEP}\n", "")


GENERATED_SELECTOR = re.compile(
    r"^  manualSelector: true\n"
    r"|^  selector:\n    matchLabels:\n      batch\.kubernetes\.io/job-name: [a-z0-9-]+\n"
    r"|^        (batch\.kubernetes\.io/)?job-name: [a-z0-9-]+\n",
    re.MULTILINE,
)


def with_generated_selector(template: str) -> str:
    """A Job as rendered before it selected its own Pods: the apiserver generates the rest."""
    return GENERATED_SELECTOR.sub("", template)


def changed_chart(tmp_path: Path, edit: Callable[[str], str] | None = None) -> tuple[Path, Path]:
    """The repo's chart and the chart of a spec whose initial training changed, each copied
    (with `edit` applied to every Job template, under a version of its own, when given)."""
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    raw["components"]["initial-training"]["activeDeadlineSeconds"] += 60
    render_copy(raw, tmp_path / "changed", ENVIRONMENT)
    charts = []
    for source, name in ((ROOT, "first"), (tmp_path / "changed", "second")):
        chart = tmp_path / name / "mlp"
        shutil.copytree(source / "charts" / "mlp", chart)
        if edit is not None:
            edited = 0
            for template in (chart / "templates").glob("*.yaml"):
                text = template.read_text()
                if "\nkind: Job\n" in text:  # the Jobs only (Namespaces stay kept)
                    edited += edit(text) != text
                    template.write_text(edit(text))
            assert edited, f"{edit.__name__} changed no template"
            meta = chart / "Chart.yaml"  # a version of its own: never the published one
            text = meta.read_text()
            tag = edit.__name__.replace("_", "-")
            meta.write_text(text.replace("\nversion: ", f"\nversion: 9.9.9-{tag}-"))
        charts.append(chart)
    return charts[0], charts[1]


def install_upgrade_rollback(
    helm: Helm, cluster: Cluster, registry: str, first: Path, second: Path, work: Path
) -> tuple[dict[str, str], dict[str, str], set[str], set[str], subprocess.CompletedProcess[str]]:
    """Jobs and Job Pods after the upgrade and after the rollback, and the rollback's run."""
    values = ["-f", str(first / f"values-{ENVIRONMENT}.yaml")]
    v1 = helm.publish(first, registry, work / "packages")
    v2 = helm.publish(second, registry, work / "packages")
    assert v1 != v2, "a changed template must give a new chart version"
    url = f"oci://{registry}/charts/mlp"
    template = helm.run("template", RELEASE, url, "--version", v1, "--plain-http", *values)
    install_crds(cluster, load_documents(template.stdout))
    helm.run("install", RELEASE, url, "--version", v1, "--plain-http", "-n", "default", *values)
    installed = jobs(cluster)
    helm.run("upgrade", RELEASE, url, "--version", v2, "--plain-http", "-n", "default", *values)
    upgraded, upgraded_pods = jobs(cluster), job_pods(cluster)
    assert set(upgraded) - set(installed), "the upgrade should create the changed Job"
    rollback = helm.run("rollback", RELEASE, "1", "-n", "default", check=False)
    return upgraded, jobs(cluster), upgraded_pods, job_pods(cluster), rollback


def status(helm: Helm) -> tuple[int, str]:
    found = yaml.safe_load(helm.run("status", RELEASE, "-n", "default", "-o", "yaml").stdout)
    return int(found["version"]), str(found["info"]["status"])


def clean(helm: Helm, cluster: Cluster) -> None:
    """Uninstall, and delete the Jobs the keep policy leaves and their Pods (foreground: the
    next test counts Pods)."""
    helm.run("uninstall", RELEASE, "-n", "default", check=False)
    cluster.kubectl(
        "delete", "jobs", "--all", "-n", NAMESPACE, "--cascade=foreground", "--wait=true"
    )


def run_flow(
    binary: str, cluster: Cluster, registry: str, tmp_path: Path, edit: Callable[[str], str] | None
) -> tuple[dict[str, str], dict[str, str], set[str], set[str], str, tuple[int, str]]:
    """install, upgrade, rollback; then Jobs and Job Pods after the upgrade and after the
    rollback, the rollback's stderr (empty when it succeeded) and the release's status."""
    helm = Helm(binary, tmp_path / "helm-home", cluster)
    first, second = changed_chart(tmp_path, edit)
    try:
        upgraded, rolled_back, upgraded_pods, rolled_back_pods, rollback = install_upgrade_rollback(
            helm, cluster, registry, first, second, tmp_path
        )
        after = status(helm)
    finally:
        clean(helm, cluster)
    error = rollback.stderr if rollback.returncode else ""
    return upgraded, rolled_back, upgraded_pods, rolled_back_pods, error, after


@pytest.mark.parametrize("binary", HELM_BINARIES)
def test_oci_install_upgrade_rollback_never_reruns_training(
    own_cluster: Cluster, registry: str, binary: str, tmp_path: Path
) -> None:
    upgraded, rolled_back, upgraded_pods, rolled_back_pods, error, after = run_flow(
        binary, own_cluster, registry, tmp_path, edit=None
    )
    assert not error, f"{binary} rollback failed:\n{error}"
    assert after == (3, "deployed"), after
    assert rolled_back == upgraded, "the rollback created or replaced a Job"
    assert upgraded_pods, "the Job controller made no Pod: nothing to compare"
    assert rolled_back_pods == upgraded_pods, "the rollback started training Pods"


def test_without_the_keep_policy_a_rollback_would_train_again(
    own_cluster: Cluster, registry: str, tmp_path: Path
) -> None:
    """The first control: the keep policy stripped. The upgrade deletes the replaced Job, and
    the rollback creates it again under its old name (a new UID), which the Job controller
    runs again."""
    upgraded, rolled_back, _, _, error, _ = run_flow(
        "helm", own_cluster, registry, tmp_path, edit=without_keep
    )
    assert not error, error
    recreated = set(rolled_back) - set(upgraded)
    assert recreated, f"no Job was re-created: {upgraded} -> {rolled_back}"


def test_with_a_generated_selector_helm3_cannot_roll_back(
    own_cluster: Cluster, registry: str, tmp_path: Path
) -> None:
    """The second control: the Jobs as rendered before they selected their own Pods. Helm 3's
    patch of the kept Job drops the selector and pod labels the apiserver generated, which it
    refuses; the release is left `failed` (still without a new Job or Pod)."""
    upgraded, rolled_back, upgraded_pods, rolled_back_pods, error, after = run_flow(
        "helm", own_cluster, registry, tmp_path, edit=with_generated_selector
    )
    assert "initial-training-" in error and "field is immutable" in error, error
    assert after == (3, "failed"), after
    assert rolled_back == upgraded and rolled_back_pods == upgraded_pods


def rendered_jobs() -> list[dict[str, Any]]:
    """Every content-named Job of every environment, as rendered (the chart holds the same)."""
    files = sorted(ROOT.glob("overlays/*/*/resources/*.job.yaml"))
    assert files, "no rendered Job: run `make render`"
    return [yaml.safe_load(f.read_text(encoding="utf-8")) for f in files]


def generated_by_the_apiserver(cluster: Cluster, job: dict[str, Any]) -> dict[str, Any]:
    """What the apiserver puts in the Job's selector and pod template labels on create beyond
    the manifest (a server-side dry run, in `default`): what a patch against the live object
    would drop and the apiserver refuse."""
    job = copy.deepcopy(job)
    job["metadata"]["namespace"] = "default"
    live = json.loads(
        cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(job)
        ).stdout
    )
    found: dict[str, Any] = {}
    if live["spec"]["selector"] != job["spec"].get("selector"):
        found["spec.selector"] = live["spec"]["selector"]
    wanted = job["spec"]["template"]["metadata"]["labels"]
    extra = {
        k: v
        for k, v in live["spec"]["template"]["metadata"]["labels"].items()
        if wanted.get(k) != v
    }
    if extra:
        found["spec.template.metadata.labels"] = extra
    return found


def test_the_apiserver_generates_nothing_in_a_rendered_jobs_immutable_fields(
    own_cluster: Cluster,
) -> None:
    """Every rendered Job as the apiserver creates it; the broken fixture (the same Job as
    rendered before, its selector left to the apiserver) shows the check sees the difference."""
    for job in rendered_jobs():
        assert not generated_by_the_apiserver(own_cluster, job), job["metadata"]["name"]
    old = rendered_jobs()[0]
    old["spec"].pop("manualSelector")
    old["spec"].pop("selector")
    for label in ("batch.kubernetes.io/job-name", "job-name"):
        old["spec"]["template"]["metadata"]["labels"].pop(label)
    generated = generated_by_the_apiserver(own_cluster, old)
    assert "batch.kubernetes.io/controller-uid" in generated["spec.selector"]["matchLabels"]
    assert {"batch.kubernetes.io/controller-uid", "job-name"} <= set(
        generated["spec.template.metadata.labels"]
    )
