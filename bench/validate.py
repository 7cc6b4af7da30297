"""The validate loop: warm ``platformgen validate`` on ``platform.yaml``, broken down by step.

Steps, as ``platformgen validate`` runs them: the freshness check (render in memory and compare),
one ``kustomize build`` per target (base and each overlay), ``helm lint`` (defaults and each
environment) and ``helm template`` (each environment) on Helm 3 and 4, one ``kubeconform`` per
Kubernetes version over all those builds, and the Argo CD checks. The whole CLI is timed too
(what ``make validate`` costs once the tools are installed). Wall and CPU seconds, as in
``bench.render``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.render import Timing, _children_cpu, _kubeconform_argv, _record, run_command
from bench.results import ROOT, Result, Target, tool_path


@dataclass
class Options:
    spec: Path
    repeat: int


def _add(a: Timing, b: Timing) -> Timing:
    return Timing(a.wall + b.wall, a.cpu + b.cpu)


def _timed_children(work: Callable[[], object]) -> Timing:
    """Wall and CPU seconds of `work`: this process's and its children's."""
    cpu, start = time.process_time() + _children_cpu(), time.perf_counter()
    work()
    return Timing(time.perf_counter() - start, time.process_time() + _children_cpu() - cpu)


def run(options: Options) -> Result:
    from platformgen.checks.validate import HELM_BINARIES, HELM_MAJOR, KUBERNETES_VERSIONS
    from platformgen.checks.validate_argocd import validate_argocd

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
    environments = [t.removeprefix("overlays/") for t in targets[1:]]
    charts = sorted((root / "charts").glob("*/Chart.yaml"))
    chart = charts[0].parent.relative_to(root).as_posix() if charts else None
    helms = [h for h in (tool_path(name) for name in HELM_BINARIES) if h] if chart else []
    builds: list[Timing] = []
    helm_steps: list[Timing] = []
    checks: list[Timing] = []
    checks_before: list[Timing] = []
    argocd: list[Timing] = []
    for _ in range(options.repeat):
        outputs: list[str] = []
        build_total, helm_total = Timing(0, 0), Timing(0, 0)
        for target in targets:
            timing, manifests = run_command([kustomize, "build", target], root)
            build_total = _add(build_total, timing)
            outputs.append(manifests)
        for helm in helms:
            for env in [None, *environments]:
                values = [] if env is None else ["-f", f"{chart}/values-{env}.yaml"]
                timing, _ = run_command([helm, "lint", "--strict", str(chart), *values], root)
                helm_total = _add(helm_total, timing)
            for env in environments:
                timing, manifests = run_command(
                    [helm, "template", "bench", str(chart), "-f", f"{chart}/values-{env}.yaml"],
                    root,
                )
                helm_total = _add(helm_total, timing)
                outputs.append(manifests)
        check_total = Timing(0, 0)
        with tempfile.TemporaryDirectory(prefix="bench-validate-") as temp:
            files = []
            for i, manifests in enumerate(outputs):
                files.append(str(Path(temp, f"{i}.yaml")))
                Path(files[-1]).write_text(manifests, encoding="utf-8")
            for version in KUBERNETES_VERSIONS:
                timing, _ = run_command(_kubeconform_argv(kubeconform, version, files), root)
                check_total = _add(check_total, timing)
        # What it replaced: one kubeconform per build and version, reading stdin, with its
        # default 4 workers (which compile the same schema several times).
        before_total = Timing(0, 0)
        for manifests in outputs:
            for version in KUBERNETES_VERSIONS:
                argv = _kubeconform_argv(kubeconform, version)
                argv = [a for a in argv if a != "-verbose"]
                argv = argv[: argv.index("-n")] + argv[argv.index("-n") + 2 :]
                timing, _ = run_command(argv, root, stdin=manifests)
                before_total = _add(before_total, timing)
        checks_before.append(before_total)
        builds.append(build_total)
        helm_steps.append(helm_total)
        checks.append(check_total)
        argocd.append(_timed_children(lambda: validate_argocd(root, tools_dir)))
    _record(result, "validate", f"kustomize build ({len(targets)} targets)", 0, builds)
    if helms:
        _record(
            result,
            "validate",
            f"helm lint and template ({' and '.join(HELM_MAJOR[Path(h).name] for h in helms)})",
            0,
            helm_steps,
        )
    _record(
        result,
        "validate",
        f"kubeconform ({len(outputs)} builds, one process per Kubernetes version"
        f" x {len(KUBERNETES_VERSIONS)})",
        0,
        checks,
    )
    _record(
        result,
        "validate",
        f"kubeconform before: one process per build and version ({len(outputs)}"
        f" x {len(KUBERNETES_VERSIONS)}), 4 workers",
        0,
        checks_before,
    )
    _record(result, "validate", "Argo CD checks (schemas and every source)", 0, argocd)
    result.notes.append(
        "The steps are timed one after the other; `platformgen validate` runs the builds, lints"
        " and templates on a pool, the two kubeconform processes side by side and the Argo CD"
        " checks beside them, so its wall time is below the steps' sum while its CPU time is"
        " about the sum plus the freshness check."
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
