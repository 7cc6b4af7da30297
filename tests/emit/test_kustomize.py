"""The kustomize emitter, checked with the real kustomize: overlays reproduce each environment."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.build import build
from platformgen.builders import build_platform
from platformgen.emit.kustomize import emit_kustomize
from platformgen.files import write_tree
from platformgen.naming import kebab
from platformgen.render import GENERATED_ROOTS
from platformgen.serialize import ordered
from platformgen.spec.load import load_spec

from support import ROOT, SPECS, tool

CASES = [SPECS / "full.yaml", SPECS / "two-envs.yaml", ROOT / "platform.yaml"]
DEPRECATED = ("commonLabels", "patchesStrategicMerge", "patchesJson6902", "vars", "bases")


def key(m: dict[str, Any]) -> tuple[str, str, str]:
    return (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"])


def retag(value: Any, images: dict[str, str]) -> Any:
    """Apply kustomize `images:` to built objects the way kustomize does."""
    if isinstance(value, dict):
        return {
            k: (images.get(v.rsplit(":", 1)[0], v) if k == "image" else retag(v, images))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [retag(v, images) for v in value]
    return value


def canonical(value: Any) -> Any:
    """Strategic merge may reorder lists merged by name; order them by name on both sides."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if items and all(isinstance(i, dict) and "name" in i for i in items):
            return sorted(items, key=lambda i: str(i["name"]))
        return items
    return value


def kustomize_build(path: Path) -> tuple[list[dict[str, Any]], str]:
    result = subprocess.run(
        [str(tool("kustomize")), "build", str(path)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d], result.stderr


@pytest.mark.tools
@pytest.mark.parametrize("spec_path", CASES, ids=lambda p: p.parent.name + "/" + p.stem)
def test_overlays_build_to_exactly_the_environment(spec_path: Path, tmp_path: Path) -> None:
    spec = load_spec(spec_path)
    write_tree(tmp_path, emit_kustomize(build(spec)), GENERATED_ROOTS)
    for env in [None, *spec.environments]:
        target = tmp_path / ("base" if env is None else f"overlays/{env}")
        built, stderr = kustomize_build(target)
        assert stderr == "", stderr
        images: dict[str, str] = {}
        if env is not None:
            entries = [
                entry
                for path in sorted(target.glob("*/kustomization.yaml"))
                for entry in yaml.safe_load(path.read_text()).get("images", [])
            ]
            for entry in entries:
                suffix = f"@{entry['digest']}" if "digest" in entry else f":{entry['newTag']}"
                images[entry["name"]] = entry["name"] + suffix
        expected = [
            retag(ordered(m), images) for group in build_platform(spec, env).values() for m in group
        ]
        assert len(built) == len(expected)
        for got, want in zip(sorted(built, key=key), sorted(expected, key=key), strict=True):
            assert canonical(got) == canonical(want), f"{target}: {key(want)} differs"


def test_kustomizations_use_only_modern_fields() -> None:
    for spec_path in CASES:
        for path, text in emit_kustomize(build(load_spec(spec_path))).items():
            if path.endswith("kustomization.yaml"):
                doc = yaml.safe_load(text)
                assert set(doc) <= {
                    "apiVersion",
                    "kind",
                    "resources",
                    "patches",
                    "images",
                    "labels",
                }
                assert not set(doc) & set(DEPRECATED)


def test_one_object_per_file_in_predictable_paths() -> None:
    files = emit_kustomize(build(load_spec(SPECS / "full.yaml")))
    for path, text in files.items():
        docs = [d for d in yaml.safe_load_all(text) if d]
        assert len(docs) == 1, path
        doc = docs[0]
        if doc["kind"] == "Kustomization":
            continue
        name = Path(path).name
        if path.startswith("overlays/"):
            assert name == f"{doc['metadata']['name']}.{kebab(doc['kind'])}.yaml"
        else:
            assert name.startswith(kebab(doc["kind"]))


def test_prod_differs_from_dev_only_by_patches_and_images() -> None:
    files = emit_kustomize(build(load_spec(ROOT / "platform.yaml")))
    for env in ("dev", "prod"):
        groups = yaml.safe_load(files[f"overlays/{env}/kustomization.yaml"])["resources"]
        for group in groups:
            kustomization = yaml.safe_load(files[f"overlays/{env}/{group}/kustomization.yaml"])
            assert kustomization["resources"][0] == f"../../../base/{group}"
        for path in (p for p in files if p.startswith(f"overlays/{env}/")):
            parts = path.split("/")
            assert parts[2] == "kustomization.yaml" or parts[2] in groups, path
            assert len(parts) <= 4 or parts[3] in {"patches", "resources"}, path


@pytest.mark.tools
@pytest.mark.parametrize("spec_path", CASES, ids=lambda p: p.parent.name + "/" + p.stem)
def test_environment_is_exactly_its_groups(spec_path: Path, tmp_path: Path) -> None:
    """`overlays/<env>` composes `overlays/<env>/<group>` (one Argo CD Application each): the
    groups together hold every object once, each exactly as the whole environment has it."""
    spec = load_spec(spec_path)
    write_tree(tmp_path, emit_kustomize(build(spec)), GENERATED_ROOTS)
    for env in spec.environments:
        whole, _ = kustomize_build(tmp_path / "overlays" / env)
        groups = yaml.safe_load((tmp_path / "overlays" / env / "kustomization.yaml").read_text())
        parts = [
            m
            for g in groups["resources"]
            for m in kustomize_build(tmp_path / "overlays" / env / g)[0]
        ]
        assert sorted(parts, key=key) == sorted(whole, key=key)
