"""Command line: `platformgen render | check | validate | set-image | promote | promote-model |
diff`. The thin shell around the pure core."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from platformgen import __version__
from platformgen.builders import Documents
from platformgen.errors import PlatformgenError, SpecError, StaleOutputError
from platformgen.files import compare_tree, owned_files, write_tree
from platformgen.render import GENERATED_ROOTS, SCATTERED, generated_roots, render
from platformgen.spec.load import load_pipelines, load_spec
from platformgen.spec.model import PlatformSpec

if TYPE_CHECKING:
    from platformgen.checks.validate import TargetResult

log = logging.getLogger("platformgen")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platformgen",
        description="Render the ML platform's kustomize base and overlays from platform.yaml.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v for info, -vv for debug (stderr)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--spec",
            type=Path,
            default=Path("platform.yaml"),
            help="spec file (default: ./platform.yaml)",
        )
        sub.add_argument(
            "--out",
            type=Path,
            default=None,
            help="folder holding base/ and overlays/ (default: the spec's folder)",
        )
        return sub

    command("render", "write base/ and overlays/ (atomically; prints the files written)")
    command("check", "exit 1 if base/ or overlays/ differ from what the spec renders")
    validate = command(
        "validate",
        "kustomize build base and every overlay, helm lint and template the chart (Helm 3 and 4),"
        " and validate it all with kubeconform",
    )
    validate.add_argument(
        "--summary", action="store_true", help="also print objects per kind per environment"
    )
    validate.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also write the results as JSON to this file (per target: objects per kind, counts)",
    )
    validate.add_argument(
        "--tools-dir",
        type=Path,
        default=Path(".tools"),
        help="where `make tools` installed kustomize, kubeconform and schemas (default: ./.tools)",
    )
    set_image = command(
        "set-image",
        "pin a component's image (tag or digest) in one environment: edit the spec, re-render",
    )
    set_image.add_argument("component", help="component name (a key of `components`)")
    set_image.add_argument(
        "reference", help="[repository]:<tag> or [repository]@sha256:<64 hex characters>"
    )
    set_image.add_argument("--env", required=True, help="environment to pin it in")
    set_image.add_argument(
        "--dry-run", action="store_true", help="print the spec diff only; change nothing"
    )
    promote = command(
        "promote", "give one environment exactly the image another runs: edit the spec, re-render"
    )
    promote.add_argument("component", help="component name (a key of `components`)")
    promote.add_argument("--from", dest="source_env", required=True, help="environment to copy")
    promote.add_argument("--to", dest="target_env", required=True, help="environment to pin")
    promote.add_argument(
        "--dry-run", action="store_true", help="print the spec diff only; change nothing"
    )
    promote_model = command(
        "promote-model",
        "serve one registry version of a model in an environment: check the registry (gate "
        "passed, metric floors), edit the spec, re-render",
    )
    promote_model.add_argument("model", help="model name in the registry (e.g. digits)")
    promote_model.add_argument("version", type=_version, nargs="?", help="registry version number")
    promote_model.add_argument("--env", required=True, help="environment to serve it in")
    promote_model.add_argument(
        "--canary", action="store_true", help="serve it as the canary beside the stable version"
    )
    promote_model.add_argument(
        "--traffic", type=int, default=None, help="the canary's share in percent (1-99)"
    )
    promote_model.add_argument(
        "--abort-canary", action="store_true", help="drop the canary; the stable version serves"
    )
    promote_model.add_argument(
        "--registry",
        default=None,
        help="registry root (path or s3:// URI; default: the serving component's --registry=)",
    )
    promote_model.add_argument(
        "--dry-run", action="store_true", help="print the spec diff only; change nothing"
    )
    diff = command(
        "diff",
        "server-side dry-run apply an environment to a live cluster: created, changed (with "
        "field paths), unchanged, orphaned objects; exit 1 unless in sync",
    )
    diff.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig of the cluster")
    diff.add_argument("--env", required=True, help="environment the cluster runs")
    diff.add_argument(
        "--field-manager",
        default="platformgen",
        help="field manager the deployment applies as (default: platformgen)",
    )
    diff.add_argument(
        "--tools-dir",
        type=Path,
        default=Path(".tools"),
        help="where `make tools` installed kustomize (default: ./.tools)",
    )
    return parser


def _version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a registry version number (1, 2, ...)")
    return int(text)


def _out(args: argparse.Namespace) -> Path:
    out: Path = args.out if args.out is not None else args.spec.resolve().parent
    return out


def _roots(out: Path, files: Mapping[str, str]) -> tuple[str, ...]:
    """The generated roots plus generated files beside hand-written ones: those rendered and
    those on disk (by their header) that the spec no longer renders, so check reports them and
    render removes them."""
    orphans = owned_files(out, SCATTERED, GENERATED_ROOTS)
    return generated_roots(files, orphans)


def _load(args: argparse.Namespace) -> tuple[PlatformSpec, Documents]:
    spec = load_spec(args.spec)
    return spec, load_pipelines(spec, args.spec.resolve().parent, args.spec.name)


def _render(args: argparse.Namespace) -> int:
    spec, pipelines = _load(args)
    files = render(spec, pipelines)
    out = _out(args)
    write_tree(out, files, _roots(out, files))
    for path in files:
        print(path)
    log.info("rendered %d files into %s", len(files), out)
    return 0


def _check(args: argparse.Namespace) -> int:
    spec, pipelines = _load(args)
    files = render(spec, pipelines)
    drift = compare_tree(_out(args), files, _roots(_out(args), files))
    if drift:
        lines = [f"generated files are stale ({args.spec.name} renders differently):"]
        lines += [f"  changed: {p}" for p in drift.changed]
        lines += [f"  missing: {p}" for p in drift.missing]
        lines += [f"  extra:   {p}" for p in drift.extra]
        lines.append("run `make render` (platformgen render) and commit the result")
        raise StaleOutputError("\n".join(lines))
    print(f"ok: {len(files)} generated files are up to date")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from platformgen.checks.validate import validate_platform
    from platformgen.checks.validate_argocd import validate_argocd

    spec, pipelines = _load(args)
    out = _out(args)
    files = render(spec, pipelines)
    drift = compare_tree(out, files, _roots(out, files))
    if drift:
        raise StaleOutputError("generated files are stale: run `make render` first")
    targets = ["base", *(f"overlays/{env}" for env in sorted(spec.environments))]
    chart = f"charts/{spec.platform.name}"
    tools = args.tools_dir.absolute()
    # The Argo CD checks are independent of the targets: they run beside them (their own
    # processes); their report, or a tool error of theirs, comes after the targets' as before.
    with ThreadPoolExecutor(max_workers=1) as beside:
        argocd = beside.submit(validate_argocd, out, tools)
        results = validate_platform(out, targets, chart, sorted(spec.environments), tools_dir=tools)
        failed = [r for r in results if not r.ok]
        if args.summary:
            _print_summary(results)
        width = max([16, *(len(r.target) for r in results)])
        for r in results:
            status = "ok" if r.ok else "FAILED"
            print(
                f"{status:6} {r.target:{width}} k8s {r.kubernetes_version}: "
                f"{r.resources} resources, {r.valid} valid, {r.invalid} invalid, "
                f"{r.errors} errors, {r.skipped} skipped"
            )
            if not r.ok:
                for message in r.messages:
                    print(f"       {message}")
        argocd_summary, argocd_problems = argocd.result()
    if args.report is not None:
        _write_report(args.report, results, argocd_summary, argocd_problems)
    print(f"{'FAILED' if argocd_problems else 'ok':6} {argocd_summary}")
    for message in argocd_problems:
        print(f"       {message}")
    if failed or argocd_problems:
        raise PlatformgenError(
            f"validation failed for {len(failed)} of {len(results)} targets"
            + (f" and {len(argocd_problems)} Argo CD checks" if argocd_problems else "")
        )
    return 0


def _write_report(
    path: Path, results: Sequence[TargetResult], argocd: str, argocd_problems: list[str]
) -> None:
    """`validate --report`: every target's result and the Argo CD checks, as JSON."""
    import dataclasses
    import json

    from platformgen.files import write_file

    document = {
        "targets": [dataclasses.asdict(r) | {"ok": r.ok} for r in results],
        "argocd": {"summary": argocd, "problems": argocd_problems, "ok": not argocd_problems},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def _print_summary(results: Sequence[object]) -> None:
    seen: dict[str, dict[str, int]] = {}
    for r in results:
        seen.setdefault(getattr(r, "target"), getattr(r, "kinds"))  # noqa: B009
    kinds = sorted({k for counts in seen.values() for k in counts})
    targets = list(seen)
    width = max(len(k) for k in kinds) if kinds else 4
    columns = {t: max(16, len(t)) for t in targets}
    print(f"{'objects per kind':{width}}  " + "  ".join(f"{t:>{columns[t]}}" for t in targets))
    for kind in kinds:
        counts = (f"{seen[t].get(kind, 0):>{columns[t]}}" for t in targets)
        print(f"{kind:{width}}  " + "  ".join(counts))
    total = "  ".join(f"{sum(seen[t].values()):>{columns[t]}}" for t in targets)
    print(f"{'total':{width}}  {total}")


def _release(args: argparse.Namespace) -> int:
    """set-image, promote and promote-model: one value of the spec changes, then the trees are
    re-rendered."""
    import difflib

    from platformgen.files import write_file
    from platformgen.release import promote, set_image
    from platformgen.spec.load import parse_spec, read_spec_text

    text = read_spec_text(args.spec)
    spec = parse_spec(text, source=args.spec.name)
    before_write: Callable[[], None] | None = None
    if args.command == "set-image":
        edited = set_image(text, spec, args.component, args.reference, args.env, args.spec.name)
    elif args.command == "promote-model":
        edited, before_write = _promote_model(args, text, spec)
    else:
        edited = promote(
            text, spec, args.component, args.source_env, args.target_env, args.spec.name
        )
    if args.dry_run:
        name = args.spec.name
        diff = difflib.unified_diff(
            text.splitlines(True), edited.splitlines(True), f"a/{name}", f"b/{name}"
        )
        sys.stdout.writelines(diff)
        return 0
    new_spec = parse_spec(edited, source=args.spec.name)
    pipelines = load_pipelines(new_spec, args.spec.resolve().parent, args.spec.name)
    files = render(new_spec, pipelines)
    out = _out(args)
    roots = _roots(out, files)
    drift = compare_tree(out, files, roots)
    if before_write is not None:
        before_write()
    write_tree(out, files, roots)
    write_file(args.spec, edited)
    print(args.spec.name)
    for path in [*drift.changed, *drift.missing, *drift.extra]:
        print(path)
    return 0


def _promote_model(
    args: argparse.Namespace, text: str, spec: PlatformSpec
) -> tuple[str, Callable[[], None] | None]:
    """The edited spec text, and the registry step to take before anything is written."""
    from platformgen import release

    served = release.served_model(spec, args.model, args.spec.name)
    wanted = release.plan_rollout(
        spec,
        served,
        args.env,
        args.version,
        canary=args.canary,
        traffic_percent=args.traffic,
        abort=args.abort_canary,
        source=args.spec.name,
    )
    edited = release.edit_rollout(text, spec, served, args.env, wanted, args.spec.name)
    if args.abort_canary:
        return edited, None
    check = release.check_registry(
        spec, served, args.version, args.env, args.registry, args.spec.name
    )
    log.info("%s version %s: gate passed, floors met", args.model, args.version)
    if args.canary or args.env != served.production_environment:
        return edited, None
    return edited, lambda: release.move_production_pointer(check, served, args.version, args.env)


def _diff(args: argparse.Namespace) -> int:
    """Exactly what `kustomize build overlays/<env>` gives the cluster, dry-run applied."""
    from platformgen.checks.live_diff import live_diff
    from platformgen.checks.validate import kustomize_documents

    spec, pipelines = _load(args)
    if args.env not in spec.environments:
        raise PlatformgenError(f"{args.spec.name}: environments.{args.env}: no such environment")
    out = _out(args)
    files = render(spec, pipelines)
    if compare_tree(out, files, _roots(out, files)):
        raise StaleOutputError("generated files are stale: run `make render` first")
    documents = kustomize_documents(out, f"overlays/{args.env}", args.tools_dir.absolute())
    report = live_diff(documents, str(args.kubeconfig), spec.platform.part_of, args.field_manager)
    for result in report.results:
        print(result.line())
    print(report.summary())
    return 0 if report.in_sync else 1


COMMANDS = {
    "diff": _diff,
    "render": _render,
    "check": _check,
    "validate": _validate,
    "set-image": _release,
    "promote": _release,
    "promote-model": _release,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Returns the exit status: 0 ok, 1 user error, 2 bad usage."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    collecting = gc.isenabled()
    # A command is one short batch: what it builds is freed by reference counting when it is
    # done, and the cyclic collector's passes over the growing build only cost time (about a
    # third of a large render's CPU). The shell, not the pure core, decides that.
    gc.disable()
    try:
        return COMMANDS[args.command](args)
    except SpecError as err:
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except PlatformgenError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if collecting:
            gc.enable()
