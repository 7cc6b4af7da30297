"""Diff-clean lint (platformgen.checks.diff_clean) over every object both emitters render.

Sources: `kustomize build` of base and every overlay, and `helm template -f values-<env>.yaml`
on Helm 3 and 4, for the repository and every golden tree. Each rule has a broken fixture in
tests/fixtures/diff_clean/ whose first line says the one problem it must produce.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.checks.diff_clean import ALLOWED_EMPTY, check_object, check_objects
from platformgen.checks.validate import HELM_BINARIES

from support import FIXTURES, GOLDEN, ROOT, SPEC_CASES, tool

pytestmark = pytest.mark.tools

BROKEN = FIXTURES / "diff_clean"


def sources() -> Iterator[Any]:
    for tree in [ROOT, *(GOLDEN / case for case in SPEC_CASES)]:
        label = "repo" if tree == ROOT else tree.name
        yield pytest.param(tree, "kustomize", "base", id=f"{label}-kustomize-base")
        for overlay in sorted((tree / "overlays").glob("*/kustomization.yaml")):
            env = overlay.parent.name
            yield pytest.param(tree, "kustomize", env, id=f"{label}-kustomize-{env}")
            for helm in HELM_BINARIES:
                yield pytest.param(tree, helm, env, id=f"{label}-{helm}-{env}")


def render(tree: Path, emitter: str, env: str) -> list[dict[str, Any]]:
    if emitter == "kustomize":
        target = tree / ("base" if env == "base" else f"overlays/{env}")
        command = [str(tool("kustomize")), "build", str(target)]
    else:
        (chart,) = [p.parent for p in (tree / "charts").glob("*/Chart.yaml")]
        values = str(chart / f"values-{env}.yaml")
        command = [str(tool(emitter)), "template", "mlp", str(chart), "-f", values]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


@pytest.mark.parametrize(("tree", "emitter", "env"), list(sources()))
def test_rendered_objects_are_diff_clean(tree: Path, emitter: str, env: str) -> None:
    objects = render(tree, emitter, env)
    assert objects
    problems = check_objects(objects)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fixture", sorted(BROKEN.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_rule_fails_its_fixture(fixture: Path) -> None:
    text = fixture.read_text()
    expected = text.splitlines()[0].removeprefix("# expect: ")
    problems = check_object(yaml.safe_load(text))
    assert len(problems) == 1, problems
    assert problems[0].endswith(expected), problems


def test_every_rule_has_a_fixture() -> None:
    found = {p.stem for p in BROKEN.glob("*.yaml")}
    assert {"null", "empty-map", "empty-list", "non-canonical-quantity"} <= found
    assert {"duplicate-list-key", "numeric-quantity"} <= found


def test_allowlist_is_short_and_reasoned() -> None:
    assert len(ALLOWED_EMPTY) <= 5
    assert all(len(reason) > 20 for _, _, reason in ALLOWED_EMPTY)
    select_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "all", "namespace": "ns"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    assert check_object(select_all) == []
