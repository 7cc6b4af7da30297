"""``mlp-registry``: list, show and promote model versions."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from mlp_common.files import dumps_json
from mlp_common.registry import CURRENT, ModelRegistry, check_promotion
from mlp_common.step import configure_logging, run_step

from mlp_register.card import CARD_FILE, model_card
from mlp_register.lineage import lineage, render_lineage

DEFAULT_REGISTRY_ENV = "MLP_REGISTRY"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-registry",
        description="List, show, promote and trace model registry versions.",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get(DEFAULT_REGISTRY_ENV),
        help=f"registry root (default: ${DEFAULT_REGISTRY_ENV})",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="models, or the versions of one model")
    listing.add_argument("model", nargs="?", help="model name")
    show = commands.add_parser("show", help="metadata of one version")
    show.add_argument("model")
    show.add_argument("version", nargs="?", default="latest", help="number, latest or production")
    trace = commands.add_parser(
        "lineage", help="the chain from serving back to the data snapshot of one version"
    )
    trace.add_argument("model")
    trace.add_argument("version", nargs="?", default="production", help="number or pointer")
    trace.add_argument("--json", action="store_true", help="print JSON instead of text")
    card = commands.add_parser("card", help="print the model card (markdown) of one version")
    card.add_argument("model")
    card.add_argument("version", nargs="?", default="latest", help="number or pointer")
    find = commands.add_parser(
        "find", help="the newest version with a training key (prints its number, or nothing)"
    )
    find.add_argument("model")
    find.add_argument("--training-key", required=True)
    promote = commands.add_parser("promote", help="point production at a version whose gate passed")
    promote.add_argument("model")
    promote.add_argument("version", help="number or latest")
    promote.add_argument("--reason", default="manual promotion", help="recorded in the log")
    promote.add_argument(
        "--force",
        action="store_true",
        help="promote even if the version's gate did not pass (an emergency; the log says so)",
    )
    promote.add_argument(
        "--expect",
        type=_expected,
        default=CURRENT,
        help="the production version this promotion replaces, or 'none' (compare-and-swap: "
        "refused if production is anything else; default: production as read just before)",
    )
    return parser


def _expected(text: str) -> int | str | None:
    if text == CURRENT:
        return CURRENT
    if text == "none":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a version number or 'none'")
    return int(text)


def _version_line(registry: ModelRegistry, model: str, number: int) -> str:
    version = registry.get(model, number)
    marks = [name for name in ("latest", "production") if registry.pointer(model, name) == number]
    gate = version.metadata.get("gate", {}).get("decision", "-")
    accuracy = version.metadata.get("metrics", {}).get("test_accuracy")
    score = f"{accuracy:.4f}" if isinstance(accuracy, float) else "-"
    parent = version.parent if version.parent is not None else "-"
    created = version.metadata.get("created_at", "-")
    return f"{number:>7}  {parent!s:>6}  {score:>8}  {gate:<9}  {created}  {','.join(marks)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not args.registry:
        parser.error(f"--registry is required (or set ${DEFAULT_REGISTRY_ENV})")
    registry = ModelRegistry(args.registry)

    def body() -> int:
        if args.command == "list" and args.model is None:
            for model in registry.list_models():
                print(model)
        elif args.command == "list":
            versions = registry.list_versions(args.model)
            if not versions:
                registry.resolve(args.model, "latest")  # raises: no such model
            print("version  parent  test_acc  gate       created_at            pointers")
            for number in versions:
                print(_version_line(registry, args.model, number))
        elif args.command == "show":
            version = registry.get(args.model, args.version)
            print(dumps_json(version.metadata | {"path": str(version.path)}), end="")
        elif args.command == "lineage":
            record = lineage(registry, args.model, args.version)
            print(dumps_json(record) if args.json else render_lineage(record), end="")
        elif args.command == "card":
            version = registry.get(args.model, args.version)
            path = version.path / CARD_FILE
            print(
                path.read_text(encoding="utf-8")
                if path.is_file()
                else model_card(version.metadata),
                end="",
            )
        elif args.command == "find":
            found = registry.find_training(args.model, args.training_key)
            if found is not None:
                print(found.version)
        else:
            reason = args.reason
            if args.force:
                reason = f"{reason} (forced past the promotion check)"
            else:
                check_promotion(registry.get(args.model, args.version))
            version = registry.promote(
                args.model, args.version, reason=reason, expected=args.expect
            )
            print(f"{args.model}: production -> version {version.version}")
        return 0

    return run_step("registry", body)
