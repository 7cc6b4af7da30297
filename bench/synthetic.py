"""Synthetic platform specs of N components, made from ``platform.yaml`` (never committed).

The components of the real spec are copied in groups (``<name>-g<i>``) until there are N; the
references inside a group (``dependsOn``, ``exposedTo``, ``payloadLogger.sink``) and each
environment's per-component settings and image digests follow the copies. Endpoints,
pipelines and namespaces stay as they are, so every synthetic spec is as valid as the real one.

``python -m bench.synthetic N OUT_DIR`` writes ``OUT_DIR/platform.yaml`` plus the files the
spec points at (the compiled pipelines), so ``platformgen render --spec OUT_DIR/platform.yaml``
works there.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from bench.results import ROOT


def synthesize(spec: dict[str, Any], size: int) -> dict[str, Any]:
    """``spec`` with exactly ``size`` components."""
    originals: dict[str, Any] = spec["components"]
    names = list(originals)
    out = copy.deepcopy(spec)
    out["components"] = {}
    environments = out.get("environments") or {}
    for env in environments.values():
        for key in ("components", "images"):
            if key in env:
                env[key] = {}
    group = 0
    while len(out["components"]) < size:
        rename = {name: f"{name}-g{group}" for name in names}
        for name in names:
            if len(out["components"]) >= size:
                break
            component = copy.deepcopy(originals[name])
            for key in ("dependsOn", "exposedTo"):
                if key in component:
                    component[key] = [rename.get(t, t) for t in component[key]]
            logger = component.get("payloadLogger")
            if isinstance(logger, dict) and logger.get("sink") in rename:
                logger["sink"] = rename[logger["sink"]]
            out["components"][rename[name]] = component
            for env_name, env in (spec.get("environments") or {}).items():
                for key in ("components", "images"):
                    if name in (env.get(key) or {}):
                        environments[env_name][key][rename[name]] = copy.deepcopy(env[key][name])
        group += 1
    # A last, partial group may lack a component its siblings name: drop those references.
    known = set(out["components"]) | set(spec.get("endpoints") or {})
    for component in out["components"].values():
        for key in ("dependsOn", "exposedTo"):
            if key in component:
                component[key] = [t for t in component[key] if t in known]
        logger = component.get("payloadLogger")
        if isinstance(logger, dict) and logger.get("sink") not in known:
            del component["payloadLogger"]
    # An image that takes its port from the components running it (portEnv) is not built when
    # no component runs it (a small size may keep no drift monitor).
    images = (out.get("builds") or {}).get("images") or {}
    used = {c.get("image") for c in out["components"].values()}
    for folder in [f for f, b in images.items() if "portEnv" in b and b["repository"] not in used]:
        del images[folder]
        for other in images.values():
            if folder in other.get("includes", []):
                other["includes"] = [i for i in other["includes"] if i != folder]
    # Tenants use the first copy of each service they named.
    for tenant in ((out.get("tenancy") or {}).get("tenants") or {}).values():
        if "uses" in tenant:
            uses = [t if t in known else f"{t}-g0" for t in tenant["uses"]]
            tenant["uses"] = [t for t in uses if t in known]
    return out


def write(size: int, directory: Path, source: Path = ROOT / "platform.yaml") -> Path:
    """Write a ``size``-component spec (and the files it references) into ``directory``."""
    spec = yaml.safe_load(source.read_text())
    directory.mkdir(parents=True, exist_ok=True)
    for pipeline in (spec.get("pipelines") or {}).values():
        compiled = pipeline.get("compiled")
        if compiled:
            target = directory / compiled
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.parent / compiled, target)
    path = directory / "platform.yaml"
    path.write_text(yaml.safe_dump(synthesize(spec, size), sort_keys=False, width=1000))
    return path


if __name__ == "__main__":
    print(write(int(sys.argv[1]), Path(sys.argv[2])))
