"""Refresh tests/golden/<case>/ from tests/fixtures/specs/<case>.yaml (`make golden`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from platformgen.files import write_tree
from platformgen.render import generated_roots, render
from platformgen.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    for spec_path in sorted((ROOT / "tests" / "fixtures" / "specs").glob("*.yaml")):
        out = ROOT / "tests" / "golden" / spec_path.stem
        if out.exists():
            shutil.rmtree(out)
        files = render(load_spec(spec_path))
        write_tree(out, files, generated_roots(files))
        print(f"refreshed {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
