"""Every spec string is safe in every output: a hostile spec renders to objects that mean what
the spec says, through the real kustomize and the real Helm 3 and 4, or it is refused.

A copy of platform.yaml gets, in every free-text field the spec accepts (descriptions of
components, endpoints and tenants, env and config values, container arguments, policy
exception reasons, RBAC exception reasons), text written to break out of where it lands: Go
template actions Helm would evaluate (`{{ .Release.Name }}`, `{{- fail "x" }}`, a lone `}}`),
YAML comment and flow syntax, quotes, and multi-line text where text may span lines. Then:

- `platformgen render` accepts it, and `platformgen check` finds the tree up to date;
- `helm template` (Helm 3 and 4) renders exactly the objects `kustomize build` does
  (tests/test_equivalence.py's comparison), so Helm evaluated none of the injected actions;
- each injected string arrives verbatim in the objects;
- `values.yaml`, whose comments carry the component descriptions, parses to the same values
  as before the injection (a description cannot start a key).

The one-line fields refuse line breaks (tests/fixtures/invalid/security-one-line-strings.yaml);
the fields a controller expands as a template refuse `{{` (security-templated-strings.yaml).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_equivalence import HELM_MAJORS, chart_of, equivalence_problems, kustomize_build

from ..e2e.kube import PLATFORMGEN, ROOT

pytestmark = pytest.mark.tools

ONE_LINE = (
    'x {{ .Release.Name }} }} {{- fail "helm evaluated me" }} # not: a comment, [a] {b} \'q\' "qq"'
)
"""For one-line fields: template actions, YAML comment and flow syntax, both quotes."""
MULTI_LINE = 'line one {{ .Values }}\n# line two: {{ include "x" . }}\n  - item: }}\n'
"""For fields that may span lines (config values, env values, arguments)."""


def hostile(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`spec` with hostile text in every free-text field; the injected strings."""
    out = copy.deepcopy(spec)
    injected: list[str] = []

    def put(mapping: dict[str, Any], key: str, text: str) -> None:
        mapping[key] = text
        injected.append(text)

    for i, component in enumerate(out["components"].values()):
        component["description"] = f"{ONE_LINE} {i}"  # documentation: values.yaml comments
        env = component.setdefault("env", {})
        put(env, "MLP_HOSTILE", f"{MULTI_LINE}{i}")
        if component.get("config"):
            put(component["config"], "hostile.txt", f"{MULTI_LINE}config {i}")
        if component["kind"] == "Deployment":
            component["args"] = [*component.get("args", []), f"--note={MULTI_LINE}{i}"]
            injected.append(component["args"][-1])
        checkov = component.setdefault("policyExceptions", {}).setdefault("checkov", {})
        put(checkov, "CKV_K8S_99", f"{ONE_LINE} waived {i}")
        for rule in component.get("rbac", []):
            put(rule, "exception", f"{ONE_LINE} rbac {i}")
    for i, endpoint in enumerate(out["endpoints"].values()):
        endpoint["description"] = f"{ONE_LINE} endpoint {i}"
    for i, tenant in enumerate(out["tenancy"]["tenants"].values()):
        put(tenant, "description", f"{ONE_LINE} tenant {i}")
    return out, injected


def strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {s for item in value.values() for s in strings(item)}
    if isinstance(value, list):
        return {s for item in value for s in strings(item)}
    return {value} if isinstance(value, str) else set()


def render_tree(spec: dict[str, Any], out: Path) -> None:
    out.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in ("pipelines", "components"):
            (out / entry.name).symlink_to(entry)
    (out / "platform.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    for command in ("render", "check"):
        result = subprocess.run(
            [str(PLATFORMGEN), command, "--spec", str(out / "platform.yaml"), "--out", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"platformgen {command}:\n{result.stderr}"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    spec, injected = hostile(raw)
    plain = tmp_path_factory.mktemp("plain") / "repo"
    attacked = tmp_path_factory.mktemp("hostile") / "repo"
    render_tree(raw, plain)
    render_tree(spec, attacked)
    return plain, attacked, injected


@pytest.mark.parametrize("major", sorted(HELM_MAJORS))
def test_helm_evaluates_no_spec_string(trees: tuple[Path, Path, list[str]], major: str) -> None:
    _, attacked, injected = trees
    for overlay in sorted((attacked / "overlays").glob("*/kustomization.yaml")):
        environment = overlay.parent.name
        problems = equivalence_problems(attacked, environment, major)
        assert not problems, "\n".join(problems)
        found = set().union(
            *(strings(d) for d in yaml.safe_load_all(kustomize_build(overlay.parent)) if d)
        )
        arrived = [s for s in injected if s in found or any(s in f for f in found)]
        missing = sorted(set(injected) - set(arrived))
        assert not missing, f"not verbatim in overlays/{environment}: {missing}"


def test_descriptions_in_values_comments_change_no_value(
    trees: tuple[Path, Path, list[str]],
) -> None:
    plain, attacked, _ = trees
    for path in sorted(chart_of(plain).glob("values*.yaml")):
        before = yaml.safe_load(path.read_text(encoding="utf-8"))
        after = yaml.safe_load((chart_of(attacked) / path.name).read_text(encoding="utf-8"))
        # The descriptions are there, as comments; and they started no key: only the injected
        # env values and waivers are new keys (each under its own map).
        text = (chart_of(attacked) / path.name).read_text(encoding="utf-8")
        if path.name == "values.yaml":
            assert f"{ONE_LINE} 0" in text
        assert _keys(before) <= _keys(after) and all(
            k.endswith((".MLP_HOSTILE", ".CKV_K8S_99")) for k in _keys(after) - _keys(before)
        ), sorted(_keys(after) - _keys(before))


def _keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    out = set()
    for key, item in value.items():
        out.add(f"{prefix}.{key}")
        out |= _keys(item, f"{prefix}.{key}")
    return out


def test_the_template_probe_is_live(tmp_path: Path) -> None:
    """The injected `fail` action does fail Helm where Helm evaluates text, so the test above
    would see an evaluation: a chart whose template holds ONE_LINE unescaped fails to render."""
    helm = shutil.which("helm", path=str(ROOT / ".tools" / "bin"))
    assert helm is not None
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
        f"data: {{note: {ONE_LINE!r}}}\n"
    )
    result = subprocess.run([helm, "template", "probe", str(chart)], capture_output=True, text=True)
    assert result.returncode != 0 and "helm evaluated me" in result.stderr, result.stderr
