"""The generator's layers (pyproject.toml [tool.importlinter], docs/architecture.md) hold, and
`lint-imports` fails on a copy of the generator with one import pointing the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import ROOT

PACKAGE = ROOT / "generators" / "platformgen"
LINT_IMPORTS = ROOT / ".venv" / "bin" / "lint-imports"


def _lint_imports(source: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts over the `platformgen` found in `source`."""
    return subprocess.run(
        [
            str(LINT_IMPORTS),
            "--config",
            str(ROOT / "pyproject.toml"),
            "--no-cache",
            "--no-logo",
        ],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    source = tmp_path / "generators"
    shutil.copytree(PACKAGE, source / "platformgen", ignore=shutil.ignore_patterns("__pycache__"))
    return source


def _add_import(module: Path, line: str) -> None:
    text = module.read_text(encoding="utf-8")
    head = "from __future__ import annotations\n"
    module.write_text(text.replace(head, f"{head}\n{line}\n", 1), encoding="utf-8")


def test_the_generator_keeps_its_layers(tmp_path: Path) -> None:
    done = _lint_imports(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "reported"),
    [
        (  # the spec reaching forward into resolve (what spec/admission.py used to do)
            "spec/admission.py",
            "import platformgen.resolve",
            "platformgen.spec.admission -> platformgen.resolve",
        ),
        (  # an emitter building instead of reading the build
            "emit/argocd/__init__.py",
            "import platformgen.builders.namespace",
            "platformgen.emit.argocd -> platformgen.builders.namespace",
        ),
        (  # the kind table importing the builders it names
            "kinds.py",
            "import platformgen.builders.deployment",
            "platformgen.kinds -> platformgen.builders.deployment",
        ),
    ],
)
def test_an_import_the_wrong_way_fails(
    tmp_path: Path, module: str, line: str, reported: str
) -> None:
    source = _copy(tmp_path)
    _add_import(source / "platformgen" / module, line)
    done = _lint_imports(source)
    assert done.returncode == 1, done.stdout
    assert reported in done.stdout
