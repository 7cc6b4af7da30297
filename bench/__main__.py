"""``python -m bench run [NAME ...]`` and ``python -m bench report``; see ``make bench``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.results import RESULTS, ROOT, Result

NAMES = ("serving", "render", "validate", "pipeline", "gate", "images", "data", "node")


def _serving(args: argparse.Namespace) -> Result:
    from bench import serving

    smoke = args.smoke
    return serving.run(
        serving.Options(
            registry=args.registry,
            model=args.model,
            version=args.version,
            concurrency=(1, 8) if smoke else tuple(args.concurrency),
            duration=1.0 if smoke else args.duration,
            repeat=1 if smoke else args.repeat,
            servers=("ours", "kserve-constant") if smoke else tuple(args.servers),
            placements=("pinned",) if smoke else tuple(args.placements),
            warmup=1.0 if smoke else 3.0,
            partial=args.results,
        )
    )


def _render(args: argparse.Namespace) -> Result:
    from bench import render

    return render.run(
        render.Options(
            sizes=(3, 10) if args.smoke else (10, 100, 1000),
            repeat=1 if args.smoke else args.repeat,
            spec=args.spec,
            profile=not args.smoke,
            kustomize_max=10 if args.smoke else args.kustomize_max,
        )
    )


def _validate(args: argparse.Namespace) -> Result:
    from bench import validate

    return validate.run(validate.Options(spec=args.spec, repeat=1 if args.smoke else args.repeat))


def _pipeline(args: argparse.Namespace) -> Result:
    from bench import pipeline

    smoke = args.smoke
    return pipeline.run(
        pipeline.Options(
            repeat=1 if smoke else args.repeat,
            epochs=2 if smoke else 0,
            fit_epochs=1 if smoke else 5,
            scaling_epochs=1 if smoke else 20,
            scaling_factor=2 if smoke else 10,
            scaling_workers=(1,) if smoke else (1, 2),
            scaling_repeat=1 if smoke else args.scaling_repeat,
        )
    )


def _gate(args: argparse.Namespace) -> Result:
    from bench import gate

    smoke = args.smoke
    return gate.run(
        gate.Options(
            sizes=(360,) if smoke else (360, 1000),
            simulations=50 if smoke else 1000,
            repeat=1 if smoke else 2,
        )
    )


def _images(args: argparse.Namespace) -> Result:
    from bench import images

    smoke = args.smoke
    return images.run(
        images.Options(
            repeat=1 if smoke else args.images_repeat,
            folders=("components/drift",) if smoke else tuple(args.images),
        )
    )


def _data(args: argparse.Namespace) -> Result:
    from bench import data

    smoke = args.smoke
    return data.run(
        data.Options(
            sizes=(1, 2) if smoke else (1, 10, 100),
            scale=3 if smoke else args.data_scale,
            cap_mib=args.data_cap,
            tensorflow_cap_mib=args.data_tensorflow_cap,
            repeat=1 if smoke else args.data_repeat,
        )
    )


def _node(args: argparse.Namespace) -> Result:
    from bench import node

    return node.run(node.Options(repeat=1 if args.smoke else args.node_repeat))


RUNNERS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "serving": _serving,
    "render": _render,
    "validate": _validate,
    "pipeline": _pipeline,
    "gate": _gate,
    "images": _images,
    "data": _data,
    "node": _node,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run benchmarks and write bench/results/<name>.json")
    run.add_argument(
        "names", nargs="*", default=list(NAMES), help=f"any of {', '.join(NAMES)} (default: all)"
    )
    run.add_argument("--smoke", action="store_true", help="one short repetition (for tests)")
    run.add_argument("--repeat", type=int, default=5, help="repetitions per figure (default 5)")
    run.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    run.add_argument("--results", type=Path, default=RESULTS)
    run.add_argument("--registry", type=Path, default=ROOT / ".run" / "registry")
    run.add_argument("--model", default=None)
    run.add_argument("--version", default="latest")
    run.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8, 32], help="serving: wrk connections"
    )
    run.add_argument(
        "--servers",
        nargs="+",
        default=["ours", "kserve-constant", "kserve-keras", "kserve-predict"],
        help="serving: which servers (default: all four)",
    )
    run.add_argument(
        "--placements", nargs="+", default=["pinned", "unpinned"], help="serving: pinned/unpinned"
    )
    run.add_argument("--spec", type=Path, default=ROOT / "platform.yaml")
    run.add_argument(
        "--kustomize-max",
        type=int,
        default=100,
        help="largest synthetic size to run kustomize/kubeconform on (default 100)",
    )
    run.add_argument(
        "--scaling-repeat",
        type=int,
        default=1,
        help="pipeline: runs per training-scaling row (default 1; each trains 20 epochs)",
    )
    run.add_argument(
        "--images",
        nargs="+",
        default=[],
        help="images: rebuild only these builds.images folders on a code change (default: all)",
    )
    run.add_argument(
        "--images-repeat",
        type=int,
        default=1,
        help="images: code-change rebuilds per image (default 1; each takes minutes)",
    )
    run.add_argument(
        "--data-scale",
        type=int,
        default=None,
        help="data: the end-to-end size, x the default rows (default: the smallest multiple of "
        "100 whose table is 5x the largest cap; 5,800 for 1024 MiB)",
    )
    run.add_argument(
        "--data-cap", type=int, default=320, help="data: each step's memory cap, MiB (default 320)"
    )
    run.add_argument(
        "--data-tensorflow-cap",
        type=int,
        default=1024,
        help="data: the memory cap of train and evaluate, MiB (default 1024)",
    )
    run.add_argument("--data-repeat", type=int, default=3, help="data: runs per size (default 3)")
    run.add_argument(
        "--node-repeat",
        type=int,
        default=3,
        help="node: model server restarts and version changes (default 3)",
    )
    report = sub.add_parser("report", help="regenerate docs/benchmarks.md from the results")
    report.add_argument("--results", type=Path, default=RESULTS)
    report.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "report":
        from bench import report

        report.write(args.results, args.docs)
        print(args.docs)
        return 0
    unknown = [name for name in args.names if name not in RUNNERS]
    if unknown:
        build_parser().error(
            f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}"
        )
    for name in args.names:
        start = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        result = RUNNERS[name](args)
        path = result.write(args.results)
        print(f"bench: {name} done in {time.monotonic() - start:.0f} s -> {path}", file=sys.stderr)
        for target in result.targets:
            mark = "met" if target.met else "MISSED"
            print(
                f"  {mark}: {target.name}: {target.value:g} (target {target.target:g})",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
