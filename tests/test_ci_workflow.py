"""The CI workflow and pre-commit hooks that forks run: they call exactly the Makefile targets,
pin what they use, pass their own linters, and fail on a broken input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import ROOT, tool

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yaml"
PRE_COMMIT = ROOT / ".pre-commit-config.yaml"
CI_TARGETS = ["check", "validate", "test"]
"""What the workflow runs, in order: `platformgen check`, `make validate`, `make test`."""
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
DOCUMENTED_TARGET = re.compile(r"^([a-zA-Z0-9_.-]+):.*## ", re.MULTILINE)


def documented_targets() -> set[str]:
    """Public targets: the ones with a `## description` (what `make help` lists)."""
    makefiles = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    return {t for f in makefiles for t in DOCUMENTED_TARGET.findall(f.read_text())}


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_runs_exactly_the_makefile_targets() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    runs = [step["run"].strip() for step in steps(workflow) if "run" in step]
    assert runs == [f"make {t}" for t in CI_TARGETS], (
        f"{WORKFLOW.name}: every run step must be `make <target>`, in this order: {CI_TARGETS}"
    )
    missing = set(CI_TARGETS) - documented_targets()
    assert not missing, f"{WORKFLOW.name} runs undocumented make targets: {sorted(missing)}"
    ci_run = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert ci_run == ["make test"], ".ci/run must run exactly the README's test command"
    assert "make test" in (ROOT / "README.md").read_text()


def test_workflow_pins_actions_and_caches_by_the_pins() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    uses = [step["uses"] for step in steps(workflow) if "uses" in step]
    assert uses, "the workflow uses no actions?"
    unpinned = [u for u in uses if not PINNED_ACTION.match(u)]
    assert not unpinned, f"actions must be pinned by commit SHA: {unpinned}"
    assert workflow["permissions"] == {"contents": "read"}
    (cache,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/cache@")]
    key = cache["with"]["key"]
    for pinned_in in ("scripts/**", "uv.lock"):
        assert pinned_in in key, f"the tools cache key must hash {pinned_in} (it pins versions)"
    paths = cache["with"]["path"].split()
    for cached in (".tools", "~/.cache/ml-platform-tools", "~/go/pkg/mod", "~/.cache/go-build"):
        assert cached in paths


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool("actionlint")), "-no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.tools
def test_actionlint_passes_the_workflow_and_fails_a_broken_one(tmp_path: Path) -> None:
    ok = actionlint(WORKFLOW)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "ci.yaml"
    broken.write_text(
        WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs-on: ${{ matrix.os }}")
    )
    failed = actionlint(broken)
    assert failed.returncode == 1
    assert "matrix" in failed.stdout, failed.stdout


def test_pre_commit_ruff_is_the_locked_ruff() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "ruff"]
    config = yaml.safe_load(PRE_COMMIT.read_text())
    pins = {
        dep
        for repo in config["repos"]
        for hook in repo["hooks"]
        for dep in hook.get("additional_dependencies", [])
        if dep.startswith("ruff")
    }
    assert pins == {f"ruff=={locked}"}, f"pre-commit pins {pins}, uv.lock has ruff {locked}"
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "platformgen-check", "check-yaml", "trailing-whitespace"} <= ids


def _checkout_copy(dest: Path) -> Path:
    """The work tree as git sees it (tracked plus new, unignored files) in a fresh repo at `dest`,
    mtimes kept, with the venv linked in so `make check` does not rebuild it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        source = ROOT / rel
        if not source.exists():  # deleted in the work tree, not yet committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    return dest


def pre_commit(repo: Path) -> subprocess.CompletedProcess[str]:
    cache = Path(os.environ.get("MLP_TOOLS_CACHE", Path.home() / ".cache" / "ml-platform-tools"))
    return subprocess.run(
        [str(tool("pre-commit")), "run", "--all-files", "--show-diff-on-failure", "--color=never"],
        cwd=repo,
        env={**os.environ, "PRE_COMMIT_HOME": str(cache / "pre-commit")},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.mark.tools
def test_pre_commit_hooks_pass_on_the_repo_and_fail_on_broken_files(tmp_path: Path) -> None:
    repo = _checkout_copy(tmp_path / "repo")
    clean = pre_commit(repo)
    assert clean.returncode == 0, clean.stdout[-4000:] + clean.stderr[-2000:]

    (repo / "notes.md").write_text("trailing space \n")
    stale = repo / "base" / "kustomization.yaml"
    stale.write_text(stale.read_text() + "# hand edit\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    broken = pre_commit(repo)
    assert broken.returncode == 1
    assert re.search(r"trailing whitespace\.+Failed", broken.stdout), broken.stdout[-4000:]
    assert re.search(r"platformgen check.*\.+Failed", broken.stdout), broken.stdout[-4000:]
    assert "base/kustomization.yaml" in broken.stdout
