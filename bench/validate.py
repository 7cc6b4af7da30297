"""The validate loop: warm ``platformgen validate`` on ``platform.yaml``, broken down by step.

Steps, as ``platformgen validate`` runs them: the freshness check (render in memory and compare),
then per target (base and each overlay) one ``kustomize build`` and one ``kubeconform`` per
Kubernetes version. The whole CLI is timed too (what ``make validate`` costs once the tools are
installed). Wall and CPU seconds, as in ``bench.render``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.render import Timing, _kubeconform_argv, _record, run_command
from bench.results import ROOT, Result, Target, tool_path


@dataclass
class Options:
    spec: Path
    repeat: int


def run(options: Options) -> Result:
    from platformgen.validate import KUBERNETES_VERSIONS

    platformgen = str(Path(sys.executable).parent / "platformgen")
    kustomize = tool_path("kustomize")
    kubeconform = tool_path("kubeconform")
    spec = options.spec.resolve()
    root = spec.parent
    result = Result(
        name="validate",
        title="The validate loop (platformgen validate on platform.yaml)",
        conditions=f"{options.repeat} warm run(s) per figure; tools from .tools/bin.",
        settings={"repeat": options.repeat, "kubernetes_versions": list(KUBERNETES_VERSIONS)},
        plot={"title": "CPU seconds per step (median; wall is in the table)", "x": "step",
              "y": "CPU seconds", "metric": "cpu_s", "bar": True},
    )  # fmt: skip
    if not (kustomize and kubeconform):
        result.notes.append("kustomize or kubeconform missing: run `make tools`")
        return result
    tools_dir = ROOT / ".tools"
    whole = [
        run_command(
            [platformgen, "validate", "--spec", str(spec), "--tools-dir", str(tools_dir)], root
        )[0]
        for _ in range(options.repeat)
    ]
    _record(result, "validate", "platformgen validate (CLI, total)", 0, whole)
    check = [
        run_command([platformgen, "check", "--spec", str(spec)], root)[0]
        for _ in range(options.repeat)
    ]
    _record(result, "validate", "freshness check (platformgen check)", 0, check)
    targets = ["base", *sorted(f"overlays/{p.name}" for p in (root / "overlays").iterdir())]
    builds: list[Timing] = []
    checks: list[Timing] = []
    for _ in range(options.repeat):
        build_total, check_total = Timing(0, 0), Timing(0, 0)
        for target in targets:
            timing, manifests = run_command([kustomize, "build", target], root)
            build_total = Timing(build_total.wall + timing.wall, build_total.cpu + timing.cpu)
            for version in KUBERNETES_VERSIONS:
                timing, _ = run_command(
                    _kubeconform_argv(kubeconform, version), root, stdin=manifests
                )
                check_total = Timing(check_total.wall + timing.wall, check_total.cpu + timing.cpu)
        builds.append(build_total)
        checks.append(check_total)
    _record(result, "validate", f"kustomize build ({len(targets)} targets)", 0, builds)
    _record(
        result,
        "validate",
        f"kubeconform ({len(targets)} targets x {len(KUBERNETES_VERSIONS)} versions)",
        0,
        checks,
    )
    for metric, what in (("wall_s", "wall"), ("cpu_s", "CPU seconds")):
        total = result.find("validate", "platformgen validate (CLI, total)", 0, metric)
        result.targets.append(
            Target(
                name=f"warm platformgen validate <= 10 s ({what})",
                value=round(total.median, 2),
                target=10.0,
                unit="s",
                met=total.median <= 10.0,
                detail=f"min {total.min:.2f} s, max {total.max:.2f} s",
            )
        )
    return result
