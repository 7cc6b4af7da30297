"""Container images: size and build time of each image `make images` builds from its generated
Dockerfile (``scripts/images.py``).

- **Size**: the image's layers uncompressed (what a node stores) and its OCI archive
  (compressed layers: what a registry transfers).
- **First build**: the wall seconds of the build that made the cached image, as recorded when
  it was built; shown only for builds that took nothing from buildah's layer cache (cold:
  every ``pip install`` ran). ``make images`` builds missing images first, so a fresh machine
  records them here.
- **Code change**: a rebuild after a code-only change, measured now: the same Dockerfile with
  another ``CODE_VERSION`` (which every layer from the final stage's ``ARG`` on depends on),
  so the build stage and its ``pip install`` come from the layer cache, as in CI after a
  commit that touches code but not ``requirements.txt``. Tagged under ``localhost/mlp-bench/``
  and removed afterwards.
- **Nothing changed**: ``make images`` when every image is cached (the content keys match).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.results import ROOT, Result, tool_version


@dataclass
class Options:
    repeat: int
    folders: tuple[str, ...] = ()
    """Only these images for the code-change rebuild (default: all)."""


def load_images() -> ModuleType:
    """scripts/images.py (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("images", ROOT / "scripts" / "images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["images"] = module
    spec.loader.exec_module(module)
    return module


def _build_all() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/build-images.sh failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def code_change_rebuild(images: Any, image: Any, run: int) -> float:
    """Wall seconds of a rebuild of `image` with a new CODE_VERSION (layer cache warm)."""
    tag = f"localhost/mlp-bench/{image.slug}:code-change-{run}"
    argv = images.bud_argv(image, f"bench-code-change-{time.time_ns()}", tag)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    subprocess.run(["buildah", "rmi", tag], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed:\n{done.stderr[-3000:]}")
    return seconds


def run(options: Options) -> Result:
    images = load_images()
    result = Result(
        name="images",
        title="Container images (make images: buildah, generated Dockerfiles)",
        conditions=(
            f"{options.repeat} code-change rebuild(s) per image, builds run under `nice` on the "
            "shared machine; first builds as recorded when the cached image was built; the base "
            "is the local stand-in for python:3.11-slim-bookworm (Debian bookworm's python3)."
        ),
        settings={"repeat": options.repeat, "folders": list(options.folders)},
        tools={"buildah": tool_version(["buildah", "--version"]).removeprefix("buildah version ")},
        plot={"title": "Image size (uncompressed layers)", "x": "image", "y": "MB",
              "metric": "size_mb", "bar": True},
    )  # fmt: skip
    warm_first = _build_all()  # builds whatever is missing (cold), else finds every image
    records = {r["folder"]: r for r in _manifest(images)["images"]}
    result.add("make images", "nothing changed (all cached)", 0, "wall_s", "s",
               [warm_first, *(_build_all() for _ in range(options.repeat - 1))])  # fmt: skip
    cold = []
    for folder, record in sorted(records.items()):
        result.add("size", folder, 0, "size_mb", "MB", [record["size_bytes"] / 1e6])
        result.add("size", folder, 0, "archive_mb", "MB", [record["archive_bytes"] / 1e6])
        if record.get("run_steps_cached") == 0:
            result.add("first build", folder, 0, "wall_s", "s", [record["build_seconds"]])
            cold.append(folder)
    plan = {image.folder: image for image in images.plan(_load_spec())}
    chosen = options.folders or tuple(sorted(plan))
    for folder in chosen:
        seconds = [code_change_rebuild(images, plan[folder], i) for i in range(options.repeat)]
        result.add("code change", folder, 0, "wall_s", "s", seconds)
    missing = sorted(set(records) - set(cold))
    if missing:
        result.notes.append(
            "No cold first build is recorded for "
            + ", ".join(missing)
            + ": the build that made their cached image took its `pip install` from buildah's "
            "layer cache (or did not record it)."
        )
    total = sum(r["size_bytes"] for r in records.values()) / 1e9
    result.notes.append(
        f"{len(records)} images, {total:.1f} GB of layers in all; they share the base layer "
        "(and buildah stores it once). The images that carry TensorFlow (the train, evaluate "
        "and serve steps and the pipeline CLI) are the large ones."
    )
    return result


def _manifest(images: Any) -> dict[str, Any]:
    import json

    document: dict[str, Any] = json.loads(Path(images.MANIFEST).read_text(encoding="utf-8"))
    return document


def _load_spec() -> Any:
    from platformgen.spec.load import load_spec

    return load_spec(ROOT / "platform.yaml")
