"""The chart equals the overlays: `helm template -f values-<env>.yaml` and
`kustomize build overlays/<env>` give the same objects, per environment, on Helm 3 and Helm 4.

Documents are keyed by (apiVersion, kind, namespace, name); a duplicate key fails. Each object
is compared as canonical JSON (sorted keys, RFC 8785 number form: 2.0 is 2), byte for byte.
Nulls and empty maps are kept: they are exactly what keeps an Argo CD app OutOfSync. The only
rewrites are Helm's own labels, listed once in helm_rewrites (the release's instance label and
the appVersion label are dropped only when they hold exactly the release name and the chart's
appVersion), and the two annotations only the chart carries, each dropped only when it holds
what it must (chart_annotations: the kind's Argo CD sync wave, read from the tree's
argocd/sync-waves/ Component, which gives the overlays theirs in Argo CD, or from kinds.py where
the tree has no gitops; the keep policy on content-named kinds); nothing is per component.
`helm test` hooks are not release objects (`--skip-tests`).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.kinds import KINDS

from support import GOLDEN, ROOT, SPEC_CASES, tool

pytestmark = pytest.mark.tools

HELM_MAJORS = {"3": "helm", "4": "helm4"}
"""Helm major -> its binary in .tools/bin (scripts/install-tools.sh keeps them apart)."""

Rewrite = tuple[str, str | None, str | None]


def helm_rewrites(release: str, app_version: str) -> tuple[Rewrite, ...]:
    """(metadata label, value Helm sets or None for any, value it stands for or None to drop):
    the labels every Helm chart puts on its objects, the only difference allowed between
    emitters."""
    return (
        ("helm.sh/chart", None, None),
        ("app.kubernetes.io/managed-by", "Helm", "platformgen"),
        ("app.kubernetes.io/instance", release, None),
        ("app.kubernetes.io/version", app_version, None),
    )


Expected = dict[str, Callable[[str], str | None]]
"""Annotation -> the value it must hold on an object of a kind (None: must not be there)."""


def sync_waves(tree: Path) -> dict[str, str]:
    """kind -> wave, from the tree's argocd/sync-waves/ Component (empty without gitops)."""
    folder = tree / "argocd" / "sync-waves"
    if not (folder / "kustomization.yaml").is_file():
        return {}
    patches = yaml.safe_load((folder / "kustomization.yaml").read_text())["patches"]
    wave = {
        p["path"]: yaml.safe_load((folder / p["path"]).read_text())["metadata"]["annotations"]
        for p in patches
    }
    return {p["target"]["kind"]: wave[p["path"]]["argocd.argoproj.io/sync-wave"] for p in patches}


def chart_annotations(tree: Path | None = None) -> Expected:
    waves = sync_waves(tree) if tree is not None else {}

    def wave(kind: str) -> str | None:
        row = KINDS.get(kind)
        return waves.get(kind, str(row.sync_wave) if row is not None else None)

    def keep(kind: str) -> str | None:
        row = KINDS.get(kind)
        return "keep" if row is not None and row.content_named else None

    return {"argocd.argoproj.io/sync-wave": wave, "helm.sh/resource-policy": keep}


RELEASE = "mlp"

Key = tuple[str, str, str, str]


def trees() -> list[Path]:
    """The repository's own tree, and every golden tree."""
    return [ROOT, *(GOLDEN / case for case in SPEC_CASES)]


def cases() -> Iterator[Any]:
    for tree in trees():
        label = "repo" if tree == ROOT else tree.name
        for overlay in sorted((tree / "overlays").glob("*/kustomization.yaml")):
            environment = overlay.parent.name
            for major in HELM_MAJORS:
                yield pytest.param(
                    tree, environment, major, id=f"{label}-{environment}-helm{major}"
                )


def chart_of(tree: Path) -> Path:
    charts = [p.parent for p in sorted((tree / "charts").glob("*/Chart.yaml"))]
    assert len(charts) == 1, f"expected one chart under {tree / 'charts'}, found {charts}"
    return charts[0]


def run(command: list[str | Path]) -> str:
    process = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=300, check=False
    )
    assert process.returncode == 0, f"{command}: {process.stderr}"
    return process.stdout


def helm_template(
    major: str,
    chart: Path,
    environment: str,
    release: str = RELEASE,
    namespace: str = "default",
) -> str:
    return run(
        [
            tool(HELM_MAJORS[major]),
            "template",
            release,
            chart,
            "--namespace",
            namespace,
            "--skip-tests",
            "-f",
            chart / f"values-{environment}.yaml",
        ]
    )


@functools.cache
def kustomize_build(overlay: Path) -> str:
    return run([tool("kustomize"), "build", overlay])


def _canonical_numbers(value: Any) -> Any:
    """JSON has one number type: 2.0 and 2 are the same number (RFC 8785 writes 2)."""
    if isinstance(value, dict):
        return {k: _canonical_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(
        _canonical_numbers(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def rewrite_helm_labels(
    document: dict[str, Any], release: str, app_version: str, expected: Expected | None = None
) -> dict[str, Any]:
    metadata = document.get("metadata") or {}
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        for label, helm_value, stands_for in helm_rewrites(release, app_version):
            if label in labels and helm_value in (None, labels[label]):
                if stands_for is None:
                    del labels[label]
                else:
                    labels[label] = stands_for
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        for annotation, value in (expected or chart_annotations()).items():
            if annotation in annotations and annotations[annotation] == value(document["kind"]):
                del annotations[annotation]
        if not annotations:
            del metadata["annotations"]
    return document


def app_version(chart: Path) -> str:
    return str(yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"])


def key_of(document: dict[str, Any]) -> Key:
    meta = document.get("metadata") or {}
    return (
        str(document.get("apiVersion")),
        str(document.get("kind")),
        str(meta.get("namespace", "")),
        str(meta.get("name")),
    )


def objects(
    stream: str,
    source: str,
    rewrite: tuple[str, str] | None = None,
    expected: Expected | None = None,
) -> dict[Key, str]:
    """`rewrite`: (release, appVersion) of a Helm stream, whose own labels are rewritten."""
    """Canonical JSON of every document of `stream`, by key; duplicates are an error."""
    out: dict[Key, str] = {}
    duplicates = []
    for document in yaml.safe_load_all(stream):
        if document is None:
            continue
        if rewrite is not None:
            document = rewrite_helm_labels(document, *rewrite, expected)
        key = key_of(document)
        if key in out:
            duplicates.append(key)
        out[key] = canonical(document)
    assert not duplicates, f"{source}: duplicate objects {duplicates}"
    return dict(sorted(out.items()))


def field_differences(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Field paths where `a` and `b` differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            sub = f"{path}.{k}" if path else k
            if k not in a:
                yield f"{sub}: only in helm: {json.dumps(b[k])}"
            elif k not in b:
                yield f"{sub}: only in kustomize: {json.dumps(a[k])}"
            else:
                yield from field_differences(a[k], b[k], sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from field_differences(x, y, f"{path}[{i}]")
    elif json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
        yield f"{path}: kustomize {json.dumps(a)} != helm {json.dumps(b)}"


def compare(kustomize: dict[Key, str], helm: dict[Key, str]) -> list[str]:
    """One problem per object that is missing on either side or differs, naming its fields."""
    problems = []
    for key in sorted(kustomize.keys() | helm.keys()):
        name = f"{key[0]} {key[1]} {key[2] + '/' if key[2] else ''}{key[3]}"
        if key not in helm:
            problems.append(f"{name}: only in kustomize build")
        elif key not in kustomize:
            problems.append(f"{name}: only in helm template")
        elif kustomize[key] != helm[key]:
            fields = list(field_differences(json.loads(kustomize[key]), json.loads(helm[key])))
            problems.append(
                f"{name} differs:\n  "
                + "\n  ".join(fields or ["(same data, different canonical JSON)"])
                + f"\n  helm object: {helm[key]}"
            )
    return problems


def equivalence_problems(
    tree: Path, environment: str, major: str, chart: Path | None = None
) -> list[str]:
    chart = chart or chart_of(tree)
    built = objects(kustomize_build(tree / "overlays" / environment), "kustomize build")
    templated = objects(
        helm_template(major, chart, environment),
        "helm template",
        (RELEASE, app_version(chart)),
        chart_annotations(tree),
    )
    return compare(built, templated)


@pytest.mark.parametrize(("tree", "environment", "major"), list(cases()))
def test_chart_equals_overlay(tree: Path, environment: str, major: str) -> None:
    problems = equivalence_problems(tree, environment, major)
    assert not problems, f"chart and overlays/{environment} differ on Helm {major}:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("major", sorted(HELM_MAJORS))
def test_equivalence_fails_on_one_changed_field(tmp_path: Path, major: str) -> None:
    """The broken fixture: the repo's chart with one field changed in one template."""
    chart = tmp_path / "chart"
    shutil.copytree(chart_of(ROOT), chart)
    template = chart / "templates" / "drift-monitor-deployment.yaml"
    text = template.read_text()
    assert text.count("revisionHistoryLimit: 5\n") == 1
    template.write_text(text.replace("revisionHistoryLimit: 5\n", "revisionHistoryLimit: 6\n"))

    problems = equivalence_problems(ROOT, "prod", major, chart=chart)

    assert len(problems) == 1, problems
    assert problems[0].startswith("apps/v1 Deployment ml-serving/drift-monitor differs:")
    assert "spec.revisionHistoryLimit: kustomize 5 != helm 6" in problems[0]


@pytest.mark.parametrize("major", sorted(HELM_MAJORS))
def test_equivalence_fails_on_one_changed_field_in_the_overlays(tmp_path: Path, major: str) -> None:
    """The broken fixture on the other side: base/ with one field changed."""
    for folder in ("base", "overlays"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    service = tmp_path / "base" / "drift-monitor" / "service.yaml"
    text = service.read_text()
    assert text.count("type: ClusterIP\n") == 1
    service.write_text(text.replace("type: ClusterIP\n", "type: NodePort\n"))

    problems = equivalence_problems(tmp_path, "dev", major, chart=chart_of(ROOT))

    assert len(problems) == 1, problems
    assert problems[0].startswith("v1 Service ml-serving/drift-monitor differs:")
    assert 'spec.type: kustomize "NodePort" != helm "ClusterIP"' in problems[0]


def test_duplicate_objects_fail() -> None:
    document = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n"
    with pytest.raises(AssertionError, match="duplicate objects"):
        objects(document + "---\n" + document, "fixture")


def test_nulls_and_empty_maps_are_compared() -> None:
    """Never normalised away: a null or an empty map on one side is a difference."""
    plain = objects("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", "a")
    for extra in ("data: null", "data: {}", "data: []"):
        other = objects(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\n{extra}\n", "b")
        assert compare(plain, other) != []


def test_only_helm_labels_are_rewritten() -> None:
    stream = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n"
        "    helm.sh/chart: mlp-0.1.0\n    app.kubernetes.io/managed-by: Helm\n    team: x\n"
    )
    (rewritten,) = objects(stream, "helm", rewrite=("mlp", "0.1.0")).values()
    assert json.loads(rewritten)["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "platformgen",
        "team": "x",
    }


@pytest.mark.parametrize("major", sorted(HELM_MAJORS))
def test_release_name_and_namespace_do_not_change_objects(major: str) -> None:
    chart = chart_of(ROOT)
    version = app_version(chart)
    first = objects(helm_template(major, chart, "prod"), "helm template", (RELEASE, version))
    second = objects(
        helm_template(major, chart, "prod", release="another-release", namespace="elsewhere"),
        "helm template",
        ("another-release", version),
    )
    assert compare(first, second) == []


def test_instance_version_and_wave_are_dropped_only_when_right() -> None:
    """The release's labels and the chart's annotations are normalised only when they hold
    exactly the release name, the appVersion, the kind's sync wave: anything else stays a
    difference."""
    right = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n"
        "    app.kubernetes.io/instance: mlp\n    app.kubernetes.io/version: 0.1.0\n"
        f"  annotations:\n    argocd.argoproj.io/sync-wave: '{KINDS['ConfigMap'].sync_wave}'\n"
    )
    plain = objects("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {}}\n", "k")
    assert compare(plain, objects(right, "helm", rewrite=("mlp", "0.1.0"))) == []
    for wrong in (
        right.replace("instance: mlp", "instance: other"),
        right.replace("version: 0.1.0", "version: 0.2.0"),
        right.replace("sync-wave: '", "sync-wave: '7"),
        right + "    helm.sh/resource-policy: keep\n",
    ):
        assert compare(plain, objects(wrong, "helm", rewrite=("mlp", "0.1.0"))) != [], wrong
