"""Our rendered objects under the real controllers: KServe v0.20, Kubeflow Trainer v2.3 with
JobSet v0.12, and Katib v0.19, built from the Go module proxy (`make controllers-tools`) and run
as host processes with their admission webhooks (tests/e2e/controllers.py), on a control plane
of this module's own (no kubelet: pods stay Pending; what is checked is what the controllers
create and what their webhooks admit, default and reject).

- InferenceService, `deploymentMode: Standard` (a spec copy): KServe makes a Deployment and a
  Service whose pod template is ours (image, security context, probes, ports).
- InferenceService, `Knative` (as committed): admitted and defaulted with no drift (a
  server-side `kubectl diff` is empty after apply), then changed and applied twice more
  without rejection. The pre-v0.15 name `Serverless` (what the generator rendered before) is
  rewritten by KServe's defaulter, so the same diff is not empty: drift that a GitOps
  controller would fight forever.
- TrainingRuntime + TrainJob: Trainer makes a JobSet, JobSet an Indexed Job whose pods carry
  our image, env (the TF_CONFIG inputs), resources and security context; Trainer's webhook
  refuses a broken TrainJob.
- Experiment: Katib's own validating webhook admits the rendered Experiment and refuses broken
  copies with its own messages. (It replaces a Python port of its rules, which disagreed with it
  twice: Katib's defaulter fills in a missing successCondition for a Job trial, and its
  validator does not check that primaryContainerName names a container.)
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import support
from .controllers import BINARIES, Controllers, running_controllers
from .kube import (
    CONTROL_PLANE,
    PLATFORMGEN,
    ROOT,
    Cluster,
    Manifest,
    control_plane,
    kustomize_build,
    load_documents,
)

pytestmark = pytest.mark.tools

ENV = "dev"
ISVC = ("ml-serving", "model-server")
TRAIN = ("ml-pipelines", "train-distributed")
NOT_COPIED = {"platform.yaml", "base", "overlays", "charts", "argocd"}
CORE_GROUPS = {"", "apps", "batch", "policy", "rbac.authorization.k8s.io", "networking.k8s.io"}
OUR_GROUPS = {"serving.kserve.io", "trainer.kubeflow.org", "kubeflow.org"}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Controllers]]:
    """A control plane with the four controllers running and their webhooks registered."""
    support.require_tools(
        *CONTROL_PLANE, "kustomize", *BINARIES, install="make tools cluster-tools controllers-tools"
    )
    work = tmp_path_factory.mktemp("controllers")
    with control_plane(work / "cluster") as cluster:
        with running_controllers(cluster, work) as controllers:
            yield cluster, controllers


def keep(spec: str) -> str:
    return spec


def render(folder: Path, edit: Callable[[str], str] = keep) -> list[Manifest]:
    """`kustomize build overlays/dev` of a copy of the repo whose platform.yaml is `edit`ed."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in NOT_COPIED:
            (folder / entry.name).symlink_to(entry)
    spec = (ROOT / "platform.yaml").read_text(encoding="utf-8")
    edited = edit(spec)
    assert edited != spec or edit is keep, "the edit changed nothing"
    (folder / "platform.yaml").write_text(edited, encoding="utf-8")
    result = subprocess.run(
        [str(PLATFORMGEN), "render", "--spec", str(folder / "platform.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return load_documents(kustomize_build(folder / "overlays" / ENV))


def committed() -> list[Manifest]:
    return load_documents(kustomize_build(ROOT / "overlays" / ENV))


def group(doc: Manifest) -> str:
    return str(doc["apiVersion"]).rpartition("/")[0]


def component(documents: list[Manifest], name: str, kinds: set[str]) -> list[Manifest]:
    """The prerequisites every workload needs (namespaces, quotas, service accounts, config)
    and the component's objects of `kinds` (its labels name it)."""
    prerequisites = {"Namespace", "ResourceQuota", "LimitRange"}
    kinds = kinds | {"ServiceAccount", "ConfigMap"}
    return [
        d
        for d in documents
        if d["kind"] in prerequisites
        or (
            d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name
            and group(d) in CORE_GROUPS | OUR_GROUPS
            and d["kind"] in kinds
        )
    ]


def apply(cluster: Cluster, documents: list[Manifest], check: bool = True) -> str:
    """Server-side apply (field manager as in kube.apply); returns stderr."""
    result = cluster.kubectl(
        "apply", "--server-side", "--field-manager=platformgen-e2e", "--validate=strict",
        "-f", "-", stdin=yaml.safe_dump_all(documents, sort_keys=False), check=check,
    )  # fmt: skip
    return result.stderr


def server_diff(cluster: Cluster, documents: list[Manifest]) -> str:
    """`kubectl diff --server-side` (exit 0: no difference, 1: the diff)."""
    result = cluster.kubectl(
        "diff", "--server-side", "--field-manager=platformgen-e2e", "-f", "-",
        stdin=yaml.safe_dump_all(documents, sort_keys=False), check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def drift(cluster: Cluster, applied: Manifest) -> list[str]:
    """How the stored object differs from what was applied: a server-side `kubectl diff`
    (what another apply would change) and every applied field read back."""
    problems = []
    diff = server_diff(cluster, [applied])
    if diff:
        problems.append(f"kubectl diff --server-side:\n{diff}")
    meta = applied["metadata"]
    live = get(cluster, applied["kind"], meta["namespace"], meta["name"])
    for key, value in sorted(meta.get("annotations", {}).items()):
        stored = live["metadata"].get("annotations", {}).get(key)
        if stored != value:
            problems.append(f"metadata.annotations.{key}: applied {value!r}, stored {stored!r}")
    if not contains(live["spec"], applied["spec"]):
        problems.append("spec: the stored spec does not hold the applied one")
    return problems


def get(cluster: Cluster, kind: str, namespace: str, name: str) -> Any:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return None if result.returncode else yaml.safe_load(result.stdout)


def wait_for_object(
    cluster: Cluster, controllers: Controllers, kind: str, namespace: str, name: str
) -> Any:
    found: list[Any] = []

    def exists() -> str | None:
        obj = get(cluster, kind, namespace, name)
        if obj is None:
            return f"no {kind} {namespace}/{name}"
        found.append(obj)
        return None

    try:
        cluster.wait_for(f"{kind} {namespace}/{name}", exists, timeout=120)
    except AssertionError as exc:
        logs = "\n".join(f"--- {b}\n{controllers.logs(b)}" for b in BINARIES)
        raise AssertionError(f"{exc}\n{logs}") from None
    return found[-1]


def delete_isvc(cluster: Cluster) -> None:
    namespace, name = ISVC
    cluster.kubectl(
        "delete", "inferenceservice", name, "-n", namespace, "--ignore-not-found",
        "--wait=true", "--timeout=90s",
    )  # fmt: skip


def isvc(documents: list[Manifest]) -> Manifest:
    (found,) = [d for d in documents if d["kind"] == "InferenceService"]
    return found


def assert_refused(
    cluster: Cluster,
    objects: list[Manifest],
    kind: str,
    mutate: Callable[[Manifest], None],
    message: str,
) -> None:
    """A `mutate`d copy of the `kind` among `objects` (the others applied first) is denied by
    an admission webhook with `message`, and nothing is stored."""
    apply(cluster, [d for d in objects if d["kind"] != kind])
    (original,) = [d for d in objects if d["kind"] == kind]
    broken = copy.deepcopy(original)
    broken["metadata"]["name"] = f"broken-{kind.lower()}"
    mutate(broken)
    stderr = apply(cluster, [broken], check=False)
    assert "denied the request" in stderr and message in stderr, stderr
    meta = broken["metadata"]
    assert get(cluster, kind, meta["namespace"], meta["name"]) is None


def contains(live: Any, want: Any) -> bool:
    """`live` holds everything of `want` (the apiserver adds defaults, never removes)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(
            k in live and contains(live[k], v) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(live, list)
            and len(live) == len(want)
            and all(contains(a, b) for a, b in zip(live, want, strict=True))
        )
    return bool(live == want)


def mode(spec: str, new: str) -> str:
    """platform.yaml with the model server's deploymentMode set to `new`."""
    edited, count = re.subn(r"(?m)^(    deploymentMode:) Knative$", rf"\1 {new}", spec)
    assert count == 1
    return edited


# --- KServe -----------------------------------------------------------------------------------


def test_standard_mode_becomes_our_deployment_and_service(
    plane: tuple[Cluster, Controllers], tmp_path: Path
) -> None:
    cluster, controllers = plane
    delete_isvc(cluster)
    documents = render(tmp_path / "repo", lambda spec: mode(spec, "Standard"))
    ours = isvc(documents)
    assert ours["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    apply(cluster, component(documents, ISVC[1], {"InferenceService"}))
    namespace, name = ISVC
    deployment = wait_for_object(cluster, controllers, "deployment", namespace, f"{name}-predictor")
    service = wait_for_object(cluster, controllers, "service", namespace, f"{name}-predictor")
    predictor = ours["spec"]["predictor"]
    (rendered,) = predictor["containers"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "kserve-container"]
    assert container["image"] == rendered["image"]
    assert container["args"] == rendered["args"]
    for key in ("securityContext", "livenessProbe", "readinessProbe", "startupProbe", "ports"):
        assert contains(container[key], rendered[key]), (key, container[key], rendered[key])
    assert container["resources"] == rendered["resources"]
    assert contains(pod["securityContext"], predictor["securityContext"])
    assert pod["serviceAccountName"] == predictor["serviceAccountName"]
    assert pod["automountServiceAccountToken"] is False
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    # Our payload logger: KServe's pod webhook adds its agent in front of the predictor, and
    # the Service sends to the agent, which logs each request to our URL and forwards it to our
    # port. (The ReplicaSet's pod stays Pending: no kubelet here.)
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )

    def a_pod() -> str | None:
        pods = cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
        return None if pods else "no pod yet"

    cluster.wait_for("the predictor's pod", a_pod, timeout=60)
    (created,) = cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
    containers = {c["name"]: c for c in created["spec"]["containers"]}
    assert set(containers) == {"kserve-container", "agent"}, sorted(containers)
    agent_text = yaml.safe_dump(containers["agent"])
    assert predictor["logger"]["url"] in agent_text, agent_text
    assert str(port["targetPort"]) in agent_text, (port, agent_text)
    assert str(rendered["ports"][0]["containerPort"]) in agent_text, agent_text
    # It exists, so Pod Security (restricted in our namespaces) admitted it, agent and all.
    live = get(cluster, "inferenceservice", namespace, name)
    assert live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert not server_diff(cluster, [ours])


def test_knative_mode_is_admitted_without_drift_and_updated_twice(
    plane: tuple[Cluster, Controllers], tmp_path: Path
) -> None:
    cluster, _ = plane
    delete_isvc(cluster)
    documents = committed()
    ours = isvc(documents)
    assert ours["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    apply(cluster, component(documents, ISVC[1], {"InferenceService"}))
    assert drift(cluster, ours) == []
    for replicas in (2, 3):  # a second and third apply, each after a spec change

        def scale(spec: str, replicas: int = replicas) -> str:
            return mode(spec, f"Knative\n    replicas: {replicas}")

        changed = isvc(render(tmp_path / "repo", scale))
        assert changed["spec"]["predictor"]["minReplicas"] == replicas
        stderr = apply(cluster, [changed], check=False)
        assert "denied" not in stderr and "rejected" not in stderr, stderr
        live = get(cluster, "inferenceservice", *ISVC)
        assert live["spec"]["predictor"]["minReplicas"] == replicas
        assert drift(cluster, changed) == []


def test_the_legacy_serverless_name_drifts(plane: tuple[Cluster, Controllers]) -> None:
    """What the generator rendered before the rename: admitted, but KServe's defaulter stores
    `Knative` where Git says `Serverless`, so the same check as above fails."""
    cluster, _ = plane
    delete_isvc(cluster)
    documents = committed()
    legacy = copy.deepcopy(isvc(documents))
    legacy["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
    apply(cluster, [*component(documents, ISVC[1], set()), legacy])
    assert drift(cluster, legacy) == [
        "metadata.annotations.serving.kserve.io/deploymentMode: applied 'Serverless', "
        "stored 'Knative'"
    ]
    delete_isvc(cluster)


# --- Trainer + JobSet ---------------------------------------------------------------------------


def _train_objects() -> tuple[list[Manifest], Manifest]:
    documents = committed()
    objects = component(
        documents, TRAIN[1], {"TrainingRuntime", "TrainJob", "PersistentVolumeClaim"}
    )
    (runtime,) = [d for d in objects if d["kind"] == "TrainingRuntime"]
    return objects, runtime


def test_train_job_becomes_a_jobset_and_two_worker_pods(
    plane: tuple[Cluster, Controllers],
) -> None:
    cluster, controllers = plane
    objects, runtime = _train_objects()
    # The TrainJob only after its runtime: Trainer's webhook refuses a TrainJob whose runtime
    # does not exist yet (Argo CD's sync waves order them; `kubectl apply -k` sends TrainJob
    # first, alphabetically, and needs a second run).
    apply(cluster, [d for d in objects if d["kind"] != "TrainJob"])
    apply(cluster, [d for d in objects if d["kind"] == "TrainJob"])
    namespace, name = TRAIN
    jobset = wait_for_object(cluster, controllers, "jobsets.jobset.x-k8s.io", namespace, name)
    assert jobset["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"
    job = wait_for_object(cluster, controllers, "job", namespace, f"{name}-node-0")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 2
    template = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]
    (rendered,) = template["template"]["spec"]["containers"]

    def two_pods() -> str | None:
        pods = cluster.get_json("pods", "-n", namespace, "-l", f"job-name={name}-node-0")
        return None if len(pods["items"]) == 2 else f"{len(pods['items'])} pods"

    cluster.wait_for("2 worker pods", two_pods, timeout=60)
    pods = cluster.get_json("pods", "-n", namespace, "-l", f"job-name={name}-node-0")["items"]
    assert sorted(p["spec"]["hostname"] for p in pods) == [f"{name}-node-0-0", f"{name}-node-0-1"]
    for pod in pods:
        assert pod["spec"]["subdomain"] == name
        (container,) = pod["spec"]["containers"]
        assert container["image"] == rendered["image"]
        assert container["command"] == rendered["command"]
        assert container["args"] == rendered["args"]
        assert container["resources"] == rendered["resources"]
        assert contains(container["securityContext"], rendered["securityContext"])
        env = {e["name"]: e for e in container["env"]}
        for variable in rendered["env"]:
            assert contains(env[variable["name"]], variable), variable
        labels = pod["metadata"]["labels"]
        # The TF_CONFIG inputs the entrypoint reads from these labels (downward API).
        assert labels["jobset.sigs.k8s.io/jobset-name"] == name
        assert labels["jobset.sigs.k8s.io/replicatedjob-name"] == "node"
        assert labels["jobset.sigs.k8s.io/job-index"] == "0"
        # The run id (MLP_RUN_ID): the model and checkpoints' folder on the work volume.
        assert labels["jobset.sigs.k8s.io/jobset-uid"] == jobset["metadata"]["uid"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["mlp-train-work"]["persistentVolumeClaim"] == {"claimName": f"{name}-work"}
        assert contains(
            pod["spec"]["securityContext"], template["template"]["spec"]["securityContext"]
        )


def test_trainer_webhook_rejects_a_train_job_without_its_runtime(
    plane: tuple[Cluster, Controllers],
) -> None:
    cluster, _ = plane
    objects, _ = _train_objects()

    def elsewhere(job: Manifest) -> None:
        job["spec"]["runtimeRef"]["name"] = "no-such-runtime"

    message = "specified trainingRuntime must be created before the TrainJob is created"
    assert_refused(cluster, objects, "TrainJob", elsewhere, message)


# --- Katib ------------------------------------------------------------------------------------


def _experiment() -> tuple[list[Manifest], Manifest]:
    documents = committed()
    (experiment,) = [d for d in documents if d["kind"] == "Experiment"]
    name = experiment["metadata"]["name"]
    return component(documents, name, {"Experiment"}), experiment


def test_katib_admits_the_rendered_experiment(plane: tuple[Cluster, Controllers]) -> None:
    cluster, _ = plane
    objects, experiment = _experiment()
    stderr = apply(cluster, objects, check=False)
    assert "denied" not in stderr and "error" not in stderr.lower(), stderr
    live = get(
        cluster, "experiment", experiment["metadata"]["namespace"], experiment["metadata"]["name"]
    )
    assert live is not None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["spec"].update(parallelTrialCount=50), "parallelTrialCount"),
        (lambda e: e["spec"].update(maxFailedTrialCount=99), "maxFailedTrialCount"),
        (lambda e: e["metadata"].update(name="x" * 41), "40"),
        (lambda e: e["spec"]["objective"].update(type="up"), "objective"),
        (lambda e: e["spec"]["parameters"][0]["feasibleSpace"].pop("min"), "min"),
        (lambda e: e["spec"]["parameters"][3]["feasibleSpace"].update(min="1"), "feasibleSpace"),
        (
            lambda e: e["spec"]["parameters"][0]["feasibleSpace"].update(distribution="zipf"),
            "zipf",
        ),
        (
            lambda e: e["spec"]["trialTemplate"]["trialParameters"][0].update(reference="nope"),
            "nope",
        ),
        (lambda e: e["spec"]["trialTemplate"]["trialParameters"].pop(), "trialParameters"),
    ],
)
def test_katib_webhook_rejects_a_broken_experiment(
    plane: tuple[Cluster, Controllers], mutate: Callable[[Manifest], None], message: str
) -> None:
    cluster, _ = plane
    objects, _ = _experiment()
    assert_refused(cluster, objects, "Experiment", mutate, message)
