"""A new workload kind is one builder module plus one row in kinds.py.

The test proves it on a copy of the generator: it writes a builder for a toy custom resource
(one new file), adds its row to `KINDS` (one new line), and renders a spec that uses it through
every emitter. Nothing else in the copy changes, yet the spec accepts the kind, kustomize
builds it, Helm templates it over the chart's values (equal to the overlay, as the
equivalence test demands of every kind), and Argo CD gives it its sync wave.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_equivalence import equivalence_problems, kustomize_build

from support import ROOT

pytestmark = pytest.mark.tools

PACKAGE = ROOT / "generators" / "platformgen"

BUILDER = '''\
"""ToyRun: a made-up custom resource that runs the component's pod template."""

from platformgen.builders.pod import pod_template, workload_metadata
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView


def build_toy_run(view: ComponentView) -> Manifest:
    return {
        "apiVersion": "toys.example.com/v1",
        "kind": "ToyRun",
        "metadata": workload_metadata(view),
        "spec": {"replicas": view.replicas, "template": pod_template(view)},
    }
'''

ROW = (
    '    "ToyRun": KindTraits(api_version="toys.example.com/v1", sync_wave=1, workload=True,'
    ' builders=("platformgen.builders.toy_run:build_toy_run",),'
    ' tunables=frozenset({"replicas"}), health="none"),\n'
)

SPEC = """\
platform: {name: toy, partOf: toy-platform}
namespaces:
  apps: {}
components:
  runner:
    kind: ToyRun
    namespace: apps
    role: batch
    image: registry.example.com/toy/runner
    replicas: 2
environments:
  dev:
    imageTag: "1.2"
    components:
      runner: {replicas: 3, env: {MODE: fast}}
gitops:
  repoURL: https://git.example.com/toy/platform.git
  targetRevision: main
"""


def _copy_with_toy_kind(tmp_path: Path) -> Path:
    """A copy of the generator with the toy kind added; returns the folder to import from."""
    src = tmp_path / "generators"
    shutil.copytree(PACKAGE, src / "platformgen", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "versions.env", tmp_path / "scripts" / "versions.env")
    (src / "platformgen" / "builders" / "toy_run.py").write_text(BUILDER, encoding="utf-8")
    kinds = src / "platformgen" / "kinds.py"
    lines = kinds.read_text(encoding="utf-8").splitlines(keepends=True)
    table = lines.index("KINDS: Mapping[str, KindTraits] = {\n")
    lines.insert(table + 1, ROW)
    kinds.write_text("".join(lines), encoding="utf-8")
    return src


def _changes(src: Path) -> tuple[list[str], list[str]]:
    """(files added to the package, lines added or removed in files it had)."""
    copy = src / "platformgen"
    ours = {p.relative_to(PACKAGE) for p in PACKAGE.rglob("*") if "__pycache__" not in p.parts}
    theirs = {p.relative_to(copy) for p in copy.rglob("*") if "__pycache__" not in p.parts}
    added = sorted(str(p) for p in theirs - ours)
    lines = []
    for path in sorted(ours & theirs):
        if (PACKAGE / path).is_file():
            a = (PACKAGE / path).read_text(encoding="utf-8").splitlines()
            b = (copy / path).read_text(encoding="utf-8").splitlines()
            lines += [
                f"{path}: {line}"
                for line in difflib.unified_diff(a, b, lineterm="", n=0)
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            ]
    return added, lines


def _render(src: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    spec = out / "platform.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "platformgen", "render", "--spec", str(spec)],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_toy_kind_is_one_file_plus_one_line(tmp_path: Path) -> None:
    src = _copy_with_toy_kind(tmp_path)
    added, lines = _changes(src)
    assert added == ["builders/toy_run.py"]
    assert lines == [f"kinds.py: +{ROW.rstrip()}"]

    out = tmp_path / "repo"
    out.mkdir()
    (out / "platform.yaml").write_text(SPEC, encoding="utf-8")
    _render(src, out)

    # kustomize: the object in base, the environment's replicas as a patch, both built.
    base = yaml.safe_load((out / "base" / "runner" / "toy-run.yaml").read_text(encoding="utf-8"))
    assert base["kind"] == "ToyRun" and base["spec"]["replicas"] == 2
    built = list(yaml.safe_load_all(kustomize_build(out / "overlays" / "dev")))
    (toy,) = [d for d in built if d["kind"] == "ToyRun"]
    assert toy["spec"]["replicas"] == 3
    container = toy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/toy/runner:1.2"
    assert {"name": "MODE", "value": "fast"} in container["env"]

    # Helm: a template over the component's values, equal to the overlay.
    chart = out / "charts" / "toy"
    template = (chart / "templates" / "runner-toy-run.yaml").read_text(encoding="utf-8")
    assert "$c.replicas" in template
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    assert set(values["components"]["runner"]) == {
        "env",
        "image",
        "policyExceptions",
        "replicas",
        "resources",
    }
    assert equivalence_problems(out, "dev", "3") == []

    # Argo CD: the kind's sync wave from its row, and the AppProject admits the kind.
    waves = yaml.safe_load(
        (out / "argocd" / "sync-waves" / "kustomization.yaml").read_text(encoding="utf-8")
    )
    assert {"path": "wave-1.yaml", "target": {"kind": "ToyRun"}} in waves["patches"]
    project = yaml.safe_load((out / "argocd" / "app-project.yaml").read_text(encoding="utf-8"))
    whitelist = project["spec"]["namespaceResourceWhitelist"]
    assert {"group": "toys.example.com", "kind": "ToyRun"} in whitelist


def test_a_kind_without_a_row_is_refused(tmp_path: Path) -> None:
    """The same spec on the generator as it is: the spec names the kinds it accepts."""
    out = tmp_path / "repo"
    out.mkdir()
    (out / "platform.yaml").write_text(SPEC, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "platformgen", "render", "--spec", str(out / "platform.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "components.runner.kind: Input should be 'Deployment'" in done.stderr
