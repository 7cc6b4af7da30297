"""How long Argo CD's repo-server takes to render our largest Application, for a big platform.

    .venv/bin/python bench/argocd_app_size.py [--components 1000] [--namespaces 20] [--whole]

Writes a synthetic spec of N components (not committed: into a temporary folder), renders it
with platformgen, and times `kustomize build` of the largest Application of each environment
exactly as the repo-server builds it (a copy of the tree, `kustomize edit add component` for the
sync waves, `kustomize build`), with the pinned kustomize from .tools/bin. "Largest" is by the
number of objects. It also times a few other Applications, and with --whole the environment's
whole overlay (`kustomize build overlays/<env>`, what one Application for everything would be:
minutes at this size).

Exit status 1 when the largest Application takes longer than the budget (--budget, 2 s).
The components cycle through the kinds the spec offers (Deployment with a Service, metrics and
alerts; Job; CronJob with RBAC), each with a dependsOn edge, so the objects per component match
a real platform's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from platformgen.files import write_tree
from platformgen.render import GENERATED_ROOTS, render
from platformgen.spec.load import parse_spec

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZE = ROOT / ".tools" / "bin" / "kustomize"


def synthetic_spec(components: int, namespaces: int) -> dict[str, Any]:
    """A valid platform.yaml with `components` components spread over `namespaces`."""
    names = [f"ns-{i:02d}" for i in range(namespaces)]
    spec: dict[str, Any] = {
        "platform": {"name": "bench", "partOf": "bench-platform"},
        "namespaces": {n: {} for n in names},
        "endpoints": {
            "store": {
                "namespace": "storage",
                "podLabels": {"app": "minio"},
                "ports": [{"name": "s3", "port": 9000}],
            }
        },
        "components": {},
        "environments": {
            "dev": {"imageTag": "dev", "components": {}},
            "prod": {"imageTag": "1.0.0", "components": {}},
        },
        "gitops": {
            "repoURL": "https://git.example.com/bench.git",
            "clusters": {"dev": {"autoSync": True}},
        },
    }
    for i in range(components):
        name = f"c{i:04d}"
        namespace = names[i % namespaces]
        shape = i % 4
        component: dict[str, Any] = {
            "namespace": namespace,
            "role": "bench",
            "image": f"registry.example.com/bench/{name}",
            "dependsOn": ["store"],
        }
        if shape in (0, 1):
            component.update(
                kind="Deployment",
                replicas=2,
                ports=[{"name": "http", "port": 8080}],
                metrics={"port": "http"},
                alerts={"errorRatio": 0.05},
            )
            if i >= 4:
                component["dependsOn"] = ["store", f"c{i - 4:04d}"]
            spec["environments"]["prod"]["components"][name] = {
                "replicas": 3,
                "disruptionBudget": {"minAvailable": 1},
            }
            spec["environments"]["dev"]["components"][name] = {"replicas": 1}
        elif shape == 2:
            component.update(kind="Job", activeDeadlineSeconds=600)
        else:
            component.update(
                kind="CronJob",
                schedule="0 3 * * *",
                rbac=[
                    {
                        "namespace": namespace,
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "verbs": ["get"],
                    }
                ],
            )
        spec["components"][name] = component
    return spec


def objects_in(folder: Path) -> int:
    """Objects an overlay folder builds: its base folder's files plus its added resources."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    count = 0
    for entry in kustomization["resources"]:
        target = (folder / entry).resolve()
        if target.is_dir():
            count += len(yaml.safe_load((target / "kustomization.yaml").read_text())["resources"])
        else:
            count += 1
    return count


def build_as_argocd(repo: Path, path: str, components: list[str]) -> tuple[float, int]:
    """(seconds, objects): copy the tree, add the components, kustomize build, as the
    repo-server does; only the build is timed."""
    with tempfile.TemporaryDirectory(prefix="bench-app-") as temp:
        copy = Path(temp)
        for folder in GENERATED_ROOTS:
            shutil.copytree(repo / folder, copy / folder, symlinks=True)
        folder = copy / path
        for component in components:
            subprocess.run(
                [str(KUSTOMIZE), "edit", "add", "component", component], cwd=folder, check=True
            )
        started = time.perf_counter()
        built = subprocess.run(
            [str(KUSTOMIZE), "build", "."], cwd=folder, capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - started
    return seconds, sum(1 for d in yaml.safe_load_all(built.stdout) if d)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="builds per timed app (median)")
    parser.add_argument("--whole", action="store_true", help="also time overlays/<env> whole")
    args = parser.parse_args(argv)
    if not KUSTOMIZE.exists():
        print(f"error: {KUSTOMIZE} missing: run `make tools`", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="bench-argocd-") as temp:
        repo = Path(temp)
        text = yaml.safe_dump(synthetic_spec(args.components, args.namespaces), sort_keys=False)
        (repo / "platform.yaml").write_text(text)
        started = time.perf_counter()
        files = render(parse_spec(text))
        write_tree(repo, files, GENERATED_ROOTS)
        print(
            f"synthetic spec: {args.components} components in {args.namespaces} namespaces; "
            f"render {time.perf_counter() - started:.1f}s, {len(files)} files"
        )
        worst = 0.0
        for env in ("dev", "prod"):
            appset = yaml.safe_load((repo / "argocd" / env / "application-set.yaml").read_text())
            source = appset["spec"]["template"]["spec"]["source"]
            components = source.get("kustomize", {}).get("components", [])
            elements = appset["spec"]["generators"][0]["list"]["elements"]
            sizes = sorted(
                ((objects_in(repo / e["path"]), e["path"]) for e in elements), reverse=True
            )
            total = sum(size for size, _ in sizes)
            print(f"{env}: {len(elements)} Applications, {total} objects")
            # The largest, the second largest, and the smallest.
            for rank, (size, path) in enumerate([sizes[0], sizes[1], sizes[-1]]):
                times = []
                for _ in range(args.runs):
                    seconds, built = build_as_argocd(repo, path, components)
                    times.append(seconds)
                assert built == size, f"{path}: built {built} objects, counted {size}"
                median = statistics.median(times)
                if rank == 0:
                    worst = max(worst, median)
                label = ("largest", "2nd largest", "smallest")[rank]
                print(
                    f"  {label:12} {path}: {size} objects, kustomize build median {median:.3f}s"
                    f" (runs: {', '.join(f'{t:.3f}' for t in times)})"
                )
            if args.whole:
                started = time.perf_counter()
                subprocess.run(
                    [str(KUSTOMIZE), "build", str(repo / "overlays" / env)],
                    capture_output=True,
                    check=True,
                )
                print(
                    f"  whole        overlays/{env}: {total} objects, "
                    f"kustomize build {time.perf_counter() - started:.1f}s"
                )
    verdict = "ok" if worst <= args.budget else "FAILED"
    print(f"{verdict}: largest Application builds in {worst:.3f}s (budget {args.budget:.1f}s)")
    return 0 if worst <= args.budget else 1


if __name__ == "__main__":
    raise SystemExit(main())
