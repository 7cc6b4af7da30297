"""Render scaling: platformgen in process and as a CLI, kustomize build, kubeconform.

For each size N (synthetic specs from ``bench.synthetic``, written to a temp dir, never
committed) and for the real ``platform.yaml``:

- ``render`` in process: ``parse_spec`` + ``load_pipelines`` + ``render`` (what ``check`` does
  before comparing), objects/s where objects = the Kubernetes objects under ``base/``;
- ``platformgen render`` and ``platformgen check`` as CLIs (import time included);
- ``kustomize build overlays/<env>`` for every environment and ``kubeconform`` on its output
  (same flags as ``platformgen validate``), up to ``--kustomize-max`` components;
- growth t(1000)/t(100) of the in-process render.

Every figure is recorded twice: wall seconds and CPU seconds (user + system, of this process
or of the child). On a shared machine the wall clock mostly measures the scheduler; targets
are judged on wall time when the machine was quiet enough and on CPU time otherwise, and the
doc says which. A cProfile of the in-process render at the largest size goes into the notes.
"""

from __future__ import annotations

import cProfile
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

    cpu, start = time.process_time(), time.perf_counter()
    spec = parse_spec(spec_path.read_text(encoding="utf-8"), source=spec_path.name)
    files = render(spec, load_pipelines(spec, spec_path.parent, spec_path.name))
    return Timing(time.perf_counter() - start, time.process_time() - cpu), files


def count_objects(files: dict[str, str]) -> int:
    count = 0
    for path, text in files.items():
        if not path.startswith("base/") or path.endswith("kustomization.yaml"):
            continue
        count += sum(
            1 for d in yaml.load_all(text, Loader=_Loader) if isinstance(d, dict) and "kind" in d
        )
    return count


def dumper_experiment(files: dict[str, str]) -> tuple[Timing, Timing, int, int]:
    """Serialize the rendered documents again with platformgen's dumper and with libyaml's
    CSafeDumper (same representers): (time current, time C, files that differ, files)."""
    from platformgen import serialize

    class CDumper(yaml.CSafeDumper):  # type: ignore[misc,name-defined]
        pass

    CDumper.add_representer(str, serialize._represent_str)  # noqa: SLF001
    documents = [
        yaml.load(text, Loader=_Loader)
        for path, text in files.items()
        if path.endswith(".yaml") and text.count("\n---") == 0 and "/templates/" not in path
    ]  # Helm templates are Go templates, YAML only once rendered

    def current() -> list[str]:
        return [serialize.to_yaml(d) for d in documents]

    def libyaml() -> list[str]:
        return [
            serialize.HEADER
            + yaml.dump(
                serialize.ordered(d),
                Dumper=CDumper,
                sort_keys=False,
                default_flow_style=False,
                allow_unicode=True,
                width=1000,
            )  # fmt: skip
            for d in documents
        ]

    timings = []
    outputs = []
    for emit in (current, libyaml):
        cpu, start = time.process_time(), time.perf_counter()
        outputs.append(emit())
        timings.append(Timing(time.perf_counter() - start, time.process_time() - cpu))
    differ = sum(a != b for a, b in zip(*outputs, strict=True))
    return timings[0], timings[1], differ, len(documents)


def _repeat(times: int, measure: Callable[[], Timing]) -> list[Timing]:
    return [measure() for _ in range(times)]


def _record(result: Result, group: str, series: str, x: float, timings: list[Timing]) -> None:
    result.add(group, series, x, "wall_s", "s", [t.wall for t in timings])
    result.add(group, series, x, "cpu_s", "s", [t.cpu for t in timings])


def _kubeconform_argv(kubeconform: str, version: str) -> list[str]:
    from platformgen.validate import CORE_SCHEMA_LOCATION, CRD_SCHEMA_LOCATION

    schemas = ROOT / ".tools" / "schemas"
    return [
        kubeconform, "-strict", "-summary", "-kubernetes-version", version,
        "-schema-location", str(schemas / CORE_SCHEMA_LOCATION),
        "-schema-location", str(schemas / CRD_SCHEMA_LOCATION), "-",
    ]  # fmt: skip


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
    from platformgen.validate import KUBERNETES_VERSIONS

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
        _, files = in_process(spec_path)
        current, libyaml, differ, total = dumper_experiment(files)
        _record(result, "serialize", "platformgen _Dumper (pure Python)", largest, [current])
        _record(result, "serialize", "libyaml CSafeDumper", largest, [libyaml])
        result.notes.append(
            f"YAML emission at {largest} components: platformgen's pure-Python dumper "
            f"{current.cpu:.2f} CPU-s, libyaml's CSafeDumper {libyaml.cpu:.2f} CPU-s "
            f"({current.cpu / max(libyaml.cpu, 1e-9):.1f}x faster), but its output differs in "
            f"{differ} of {total} files: libyaml writes a list under a key with its `- ` at the "
            "key's indent, platformgen indents it two spaces deeper like kubectl, and libyaml's "
            "emitter has no setting for that. The switch would rewrite every generated file, "
            "so it is not made here."
        )
        if options.profile:
            result.notes.extend(profile_render(spec_path))
    result.settings["pyyaml_dumper"] = _dumper_name()
    return result


def _dumper_name() -> str:
    from platformgen import serialize

    dumper = getattr(serialize, "_Dumper", None)
    if dumper is None:
        return "unknown"
    return " < ".join(c.__name__ for c in dumper.__mro__[:3])


def objects_at(result: Result, size: int) -> int:
    return int(result.find("scaling", "objects", size, "objects").median)
