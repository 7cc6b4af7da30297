"""Render scaling: platformgen in process and as a CLI, kustomize build, kubeconform.

For each size N (synthetic specs from ``bench.synthetic``, written to a temp dir, never
committed) and for the real ``platform.yaml``:

- ``render`` in process: ``parse_spec`` + ``load_pipelines`` + ``render`` (what ``check`` does
  before comparing), objects/s where objects = the Kubernetes objects under ``base/``;
- ``platformgen render`` and ``platformgen check`` as CLIs (import time included);
- ``kustomize build overlays/<env>`` for every environment and ``kubeconform`` on its output
  (same flags as ``platformgen validate``), and ``helm template`` of the chart with each
  environment's values, up to ``--kustomize-max`` components;
- ``kustomize build`` of one Argo CD Application (the largest group, ``platform``) at every size;
- growth t(1000)/t(100) of the in-process render.

Every figure is recorded twice: wall seconds and CPU seconds (user + system, of this process
or of the child). On a shared machine the wall clock mostly measures the scheduler; targets
are judged on wall time when the machine was quiet enough and on CPU time otherwise, and the
doc says which. A cProfile of the in-process render at the largest size goes into the notes.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import synthetic
from bench.results import ROOT, Result, Target, tool_path, tool_version

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass
class Options:
    sizes: tuple[int, ...]
    repeat: int
    spec: Path
    profile: bool
    kustomize_max: int


@dataclass
class Timing:
    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(argv: Sequence[str], cwd: Path, stdin: str | None = None) -> tuple[Timing, str]:
    """Wall and child CPU seconds of one command; its stdout. Raises on failure."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    )
    timing = Timing(time.perf_counter() - start, _children_cpu() - cpu)
    if done.returncode != 0 and "kubeconform" not in argv[0]:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return timing, done.stdout


def in_process(spec_path: Path) -> tuple[Timing, dict[str, str]]:
    from platformgen.render import render
    from platformgen.spec.load import load_pipelines, parse_spec

    collecting = gc.isenabled()
    gc.disable()  # as platformgen.cli.main runs every command
    try:
        cpu, start = time.process_time(), time.perf_counter()
        spec = parse_spec(spec_path.read_text(encoding="utf-8"), source=spec_path.name)
        files = render(spec, load_pipelines(spec, spec_path.parent, spec_path.name))
        return Timing(time.perf_counter() - start, time.process_time() - cpu), files
    finally:
        if collecting:
            gc.enable()


def count_objects(files: dict[str, str]) -> int:
    count = 0
    for path, text in files.items():
        if not path.startswith("base/") or path.endswith("kustomization.yaml"):
            continue
        count += sum(
            1 for d in yaml.load_all(text, Loader=_Loader) if isinstance(d, dict) and "kind" in d
        )
    return count


def _timed(work: Callable[[], Any]) -> tuple[Timing, Any]:
    cpu, start = time.process_time(), time.perf_counter()
    value = work()
    return Timing(time.perf_counter() - start, time.process_time() - cpu), value


def rendered_documents(spec_path: Path) -> list[Any]:
    """Every document the emitters hand to ``serialize.to_yaml`` in one render of the spec."""
    import platformgen.emit.argocd
    import platformgen.emit.helm
    import platformgen.emit.helm.text
    import platformgen.emit.kustomize
    from platformgen import serialize

    documents: list[Any] = []

    def recording(document: Any, header: bool = True) -> str:
        documents.append(document)
        return serialize.to_yaml(document, header)

    modules = (
        platformgen.emit.kustomize,
        platformgen.emit.helm,
        platformgen.emit.helm.text,
        platformgen.emit.argocd,
    )
    saved = [m.to_yaml for m in modules]
    for m in modules:
        m.to_yaml = recording  # type: ignore[assignment]
    try:
        in_process(spec_path)
    finally:
        for m, original in zip(modules, saved, strict=True):
            m.to_yaml = original  # type: ignore[assignment]
    return documents


def change_experiments(result: Result, spec_path: Path, size: int) -> None:
    """Each render change against what it replaced, in this run, at ``size`` components:
    YAML emission (PyYAML's pure-Python emitter, which defined the bytes and still does, against
    the direct writer, and libyaml's CSafeDumper for reference), spec parsing (PyYAML's
    pure-Python compose plus a second full parse, against one libyaml parse). Building each
    environment once is measured by the render figures themselves (docs/benchmarks.md)."""
    from platformgen import serialize
    from platformgen.spec import load

    documents = rendered_documents(spec_path)
    before, reference = _timed(lambda: [serialize._pyyaml_dump(d) for d in documents])
    serialize._cached_scalar.cache_clear()  # as cold as in a fresh `platformgen render`
    serialize._KEYS.clear()
    serialize._VALUES.clear()
    after, ours = _timed(lambda: [serialize.to_yaml(d, header=False) for d in documents])

    class CDumper(yaml.CSafeDumper):  # type: ignore[misc,name-defined]
        pass

    CDumper.add_representer(str, serialize._represent_str)
    libyaml, theirs = _timed(
        lambda: [
            yaml.dump(serialize.ordered(d), Dumper=CDumper, sort_keys=False,
                      default_flow_style=False, allow_unicode=True, width=1000)
            for d in documents
        ]
    )  # fmt: skip
    identical = sum(a == b for a, b in zip(reference, ours, strict=True))
    differ = sum(a != b for a, b in zip(reference, theirs, strict=True))
    group = "changes"
    _record(result, group, "emit: PyYAML pure-Python _Dumper (before)", size, [before])
    _record(result, group, "emit: platformgen direct writer (after)", size, [after])
    _record(result, group, "emit: libyaml CSafeDumper (not byte-identical)", size, [libyaml])
    result.notes.append(
        f"YAML emission of the {len(documents):,} documents one render writes at {size} "
        f"components: PyYAML's pure-Python emitter {before.cpu:.2f} CPU-s, platformgen's direct "
        f"writer {after.cpu:.2f} CPU-s ({before.cpu / max(after.cpu, 1e-9):.1f}x less), "
        f"identical bytes in {identical} of {len(documents)} documents; libyaml's CSafeDumper "
        f"{libyaml.cpu:.2f} CPU-s, but its output differs in {differ} of them (it writes a "
        "list under a key with its `- ` at the key's indent and has no setting for that)."
    )
    if identical != len(documents):
        raise RuntimeError(f"direct writer differs from PyYAML in {len(documents) - identical}")

    text = spec_path.read_text(encoding="utf-8")

    def pure_python_parse() -> Any:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        load._node_problems(node)
        return yaml.safe_load(text)

    parse_before, data_before = _timed(pure_python_parse)
    parse_after, data_after = _timed(lambda: load._parse_yaml(text, spec_path.name))
    if data_before != data_after:
        raise RuntimeError("libyaml and PyYAML read the spec differently")
    _record(result, group, "parse spec: PyYAML pure Python, twice (before)", size, [parse_before])
    _record(result, group, "parse spec: libyaml, once (after)", size, [parse_after])

    result.notes.append(
        f"Spec parsing at {size} components ({len(text) / 1e6:.1f} MB of YAML): PyYAML's "
        f"pure-Python compose plus a second parse {parse_before.cpu:.2f} CPU-s, one libyaml parse "
        f"{parse_after.cpu:.2f} CPU-s (same data)."
    )


def _repeat(times: int, measure: Callable[[], Timing]) -> list[Timing]:
    return [measure() for _ in range(times)]


def _record(result: Result, group: str, series: str, x: float, timings: list[Timing]) -> None:
    result.add(group, series, x, "wall_s", "s", [t.wall for t in timings])
    result.add(group, series, x, "cpu_s", "s", [t.cpu for t in timings])


def _kubeconform_argv(kubeconform: str, version: str, inputs: Sequence[str] = ("-",)) -> list[str]:
    """The command `platformgen validate` runs (validate.kubeconform_command), on `inputs`."""
    from platformgen.checks.validate import kubeconform_command

    return kubeconform_command(kubeconform, ROOT / ".tools" / "schemas", version, inputs)


def profile_render(spec_path: Path, top: int = 12) -> list[str]:
    """The in-process render's biggest costs, by own time and by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    in_process(spec_path)
    profiler.disable()
    notes = []
    for order in ("tottime", "cumulative"):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(order).print_stats(top)
        lines = [
            line.rstrip()
            for line in buffer.getvalue().splitlines()
            if line.strip() and not line.startswith(("   Ordered", "   List reduced"))
        ]
        notes.append(
            f"cProfile of the in-process render, top {top} by {order}:\n\n"
            + "\n".join(
                "    " + line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
                for line in lines
            )
        )
    return notes


def run(options: Options) -> Result:
    platformgen = str(Path(sys.executable).parent / "platformgen")
    kustomize = tool_path("kustomize")
    kubeconform = tool_path("kubeconform")
    helm = tool_path("helm")
    from platformgen.checks.validate import KUBERNETES_VERSIONS

    result = Result(
        name="render",
        title="Render scaling (platformgen, kustomize, kubeconform)",
        conditions=(
            f"{options.repeat} run(s) per figure; synthetic specs of {list(options.sizes)} "
            f"components built from platform.yaml; kustomize/kubeconform up to "
            f"{options.kustomize_max} components; wall and CPU seconds recorded."
        ),
        settings={"sizes": list(options.sizes), "repeat": options.repeat,
                  "kustomize_max": options.kustomize_max},
        plot={"title": "seconds by components (in-process render, CLI, kustomize)",
              "x": "components", "y": "seconds (median)", "metric": "cpu_s",
              "logx": True, "logy": True, "groups": ["scaling"]},
        tools={
            "kustomize": tool_version([kustomize, "version"]) if kustomize else "unavailable",
            "kubeconform": tool_version([kubeconform, "-v"]) if kubeconform else "unavailable",
            "helm": tool_version([helm, "version", "--short"]) if helm else "unavailable",
        },
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp_name:
        tmp = Path(tmp_name)
        # The real spec: check (CLI) against kustomize build overlays/prod (CLI).
        real = options.spec.resolve()
        check = _repeat(
            options.repeat,
            lambda: run_command([platformgen, "check", "--spec", str(real)], real.parent)[0],
        )
        _record(result, "platform.yaml", "platformgen check (CLI)", 0, check)
        startup = _repeat(
            options.repeat,
            lambda: run_command([sys.executable, "-c", "import platformgen.cli"], real.parent)[0],
        )
        _record(result, "platform.yaml", "import platformgen.cli (start-up floor)", 0, startup)
        if kustomize:
            build = _repeat(
                options.repeat,
                lambda: run_command([kustomize, "build", "overlays/prod"], real.parent)[0],
            )
            _record(result, "platform.yaml", "kustomize build overlays/prod", 0, build)
            for metric in ("wall_s", "cpu_s"):
                ours = result.find("platform.yaml", "platformgen check (CLI)", 0, metric)
                theirs = result.find("platform.yaml", "kustomize build overlays/prod", 0, metric)
                ratio = ours.median / theirs.median
                result.targets.append(
                    Target(
                        name=f"platformgen check <= 0.5 x kustomize build overlays/prod ({metric})",
                        value=round(ratio, 3), target=0.5, unit="x", met=ratio <= 0.5,
                        detail=f"{ours.median:.3f} s vs {theirs.median:.3f} s (medians)",
                    )
                )  # fmt: skip

        for size in options.sizes:
            spec_path = synthetic.write(size, tmp / str(size))
            timings, files = [], {}
            for _ in range(options.repeat):
                timing, files = in_process(spec_path)
                timings.append(timing)
            objects = count_objects(files)
            _record(result, "scaling", "render in process", size, timings)
            result.add("scaling", "objects", size, "objects", "objects", [objects])
            result.add(
                "scaling", "render in process", size, "objects_per_s", "objects/s",
                [objects / t.wall for t in timings],
            )  # fmt: skip
            result.add(
                "scaling", "render in process", size, "objects_per_cpu_s", "objects/CPU-s",
                [objects / t.cpu for t in timings],
            )  # fmt: skip
            cli = _repeat(
                options.repeat,
                lambda p=spec_path: run_command(
                    [platformgen, "render", "--spec", str(p)], p.parent
                )[0],
            )
            _record(result, "scaling", "platformgen render (CLI)", size, cli)
            if kustomize:
                # One Argo CD Application: the largest group's overlay (`platform`: namespaces
                # and their policies) of the last environment, at every size.
                env = sorted(p.name for p in (spec_path.parent / "overlays").iterdir())[-1]
                app = _repeat(
                    options.repeat,
                    lambda p=spec_path, e=env: run_command(
                        [kustomize, "build", f"overlays/{e}/platform"], p.parent
                    )[0],
                )
                _record(result, "scaling", "kustomize build of one Application (platform)",
                        size, app)  # fmt: skip
            charts = sorted((spec_path.parent / "charts").glob("*/Chart.yaml"))
            if helm and charts and size <= options.kustomize_max:
                chart = charts[0].parent.relative_to(spec_path.parent).as_posix()
                environments = sorted(p.name for p in (spec_path.parent / "overlays").iterdir())
                templates: list[Timing] = []
                for _ in range(options.repeat):
                    total = Timing(0, 0)
                    for env in environments:
                        timing, _ = run_command(
                            [helm, "template", "bench", chart, "-f",
                             f"{chart}/values-{env}.yaml"], spec_path.parent,
                        )  # fmt: skip
                        total = Timing(total.wall + timing.wall, total.cpu + timing.cpu)
                    templates.append(total)
                _record(result, "scaling", "helm template (all environments)", size, templates)
            if kustomize and size <= options.kustomize_max:
                environments = sorted(p.name for p in (spec_path.parent / "overlays").iterdir())
                builds: list[Timing] = []
                checks: list[Timing] = []
                for _ in range(options.repeat):
                    build_total, check_total = Timing(0, 0), Timing(0, 0)
                    for env in environments:
                        timing, manifests = run_command(
                            [kustomize, "build", f"overlays/{env}"], spec_path.parent
                        )
                        build_total = Timing(build_total.wall + timing.wall,
                                             build_total.cpu + timing.cpu)  # fmt: skip
                        if kubeconform:
                            timing, _ = run_command(
                                _kubeconform_argv(kubeconform, KUBERNETES_VERSIONS[-1]),
                                spec_path.parent, stdin=manifests,
                            )  # fmt: skip
                            check_total = Timing(check_total.wall + timing.wall,
                                                 check_total.cpu + timing.cpu)  # fmt: skip
                    builds.append(build_total)
                    checks.append(check_total)
                _record(result, "scaling", "kustomize build (all overlays)", size, builds)
                if kubeconform:
                    _record(result, "scaling", "kubeconform (all overlays)", size, checks)

    sizes = sorted(options.sizes)
    largest = sizes[-1]
    for metric in ("wall_s", "cpu_s"):
        rate_metric = "objects_per_s" if metric == "wall_s" else "objects_per_cpu_s"
        rate = result.find("scaling", "render in process", largest, rate_metric)
        result.targets.append(
            Target(
                name=f">= 10,000 objects/s in process at {largest} components ({metric})",
                value=round(rate.median), target=10000, unit="objects/s",
                met=rate.median >= 10000,
                detail=f"{objects_at(result, largest)} objects",
            )
        )  # fmt: skip
        if len(sizes) >= 2:
            small = sizes[-2]
            t_big = result.find("scaling", "render in process", largest, metric).median
            t_small = result.find("scaling", "render in process", small, metric).median
            growth = t_big / t_small
            result.targets.append(
                Target(
                    name=f"t({largest}) / t({small}) <= {1.1 * largest / small:g} "
                    f"(in-process render, {metric})",
                    value=round(growth, 2), target=round(1.1 * largest / small, 2), unit="x",
                    met=growth <= 1.1 * largest / small,
                    detail=f"{t_big:.3f} s vs {t_small:.3f} s",
                )
            )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp_name:
        spec_path = synthetic.write(largest, Path(tmp_name))
        change_experiments(result, spec_path, largest)
        if options.profile:
            result.notes.extend(profile_render(spec_path))
    return result


def objects_at(result: Result, size: int) -> int:
    return int(result.find("scaling", "objects", size, "objects").median)
