"""Read `platform.yaml` into a `PlatformSpec`, or raise one `SpecError` listing every problem."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from platformgen.errors import SpecError
from platformgen.naming import image_repository
from platformgen.spec.images import check_image_pins
from platformgen.spec.model import PipelineStep, PlatformSpec
from platformgen.spec.references import check_references

_FastLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser with PyYAML's safe constructor, when PyYAML was built with libyaml."""


def read_spec_text(path: Path) -> str:
    """The spec file's text, or a SpecError that names it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([f"{path}: cannot read: {err.strerror or err}"]) from None
    except UnicodeDecodeError as err:
        raise SpecError([f"{path.name}: not UTF-8 text (byte {err.start}: {err.reason})"]) from None


def load_spec(path: Path) -> PlatformSpec:
    """Load and validate the spec at `path`."""
    return parse_spec(read_spec_text(path), source=path.name)


PIPELINE_KINDS = {
    ("pipelines.kubeflow.org/v2beta1", "Pipeline"),
    ("pipelines.kubeflow.org/v2beta1", "PipelineVersion"),
}


def load_pipelines(
    spec: PlatformSpec, base_dir: Path, source: str = "platform.yaml"
) -> dict[str, list[dict[str, Any]]]:
    """The compiled KFP objects of every pipeline in `spec`, read relative to `base_dir`."""
    out: dict[str, list[dict[str, Any]]] = {}
    problems = []
    for name, pipeline in sorted(spec.pipelines.items()):
        where = f"{source}: pipelines.{name}.compiled"
        path = base_dir / pipeline.compiled
        try:
            documents = [d for d in _safe_load_all(path.read_text(encoding="utf-8")) if d]
        except OSError as err:
            problems.append(f"{where}: cannot read {pipeline.compiled}: {err.strerror or err}")
            continue
        except UnicodeDecodeError as err:
            problems.append(
                f"{where}: {pipeline.compiled} is not UTF-8 text (byte {err.start}: {err.reason})"
            )
            continue
        except yaml.YAMLError as err:
            problems.append(f"{where}: invalid YAML in {pipeline.compiled}: {_yaml_message(err)}")
            continue
        kinds = [
            (d.get("apiVersion"), d.get("kind")) if isinstance(d, dict) else None for d in documents
        ]
        if sorted(k for k in kinds if k) != sorted(PIPELINE_KINDS) or None in kinds:
            problems.append(
                f"{where}: {pipeline.compiled} must hold exactly one Pipeline and one "
                "PipelineVersion (pipelines.kubeflow.org/v2beta1): run `make pipeline-compile`"
            )
            continue
        unknown = _undeclared_images(pipeline.steps, documents)
        if unknown:
            problems.append(
                f"{source}: pipelines.{name}.steps: the compiled pipeline runs images no step "
                f"declares: {', '.join(unknown)}"
            )
            continue
        out[name] = documents
    if problems:
        raise SpecError(problems)
    return out


def executor_containers(pipeline_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(executor, container) of a compiled pipeline spec's executors that run an image, sorted."""
    executors = pipeline_spec.get("deploymentSpec", {}).get("executors", {})
    found = []
    for name, executor in sorted(executors.items()):
        container = executor.get("container")
        if isinstance(container, dict) and "image" in container:
            found.append((name, container))
    return found


def _undeclared_images(steps: Mapping[str, PipelineStep], documents: list[Any]) -> list[str]:
    """`<executor> (<repository>)` of every executor whose image no step declares."""
    declared = {step.image for step in steps.values()}
    unknown = []
    for document in documents:
        if document.get("kind") != "PipelineVersion":
            continue
        pipeline_spec = document.get("spec", {}).get("pipelineSpec", {})
        for executor_name, container in executor_containers(pipeline_spec):
            repository = image_repository(str(container["image"]))
            if repository not in declared:
                unknown.append(f"{executor_name} ({repository})")
    return unknown


def parse_spec(text: str, source: str = "platform.yaml") -> PlatformSpec:
    """Validate spec `text`; `source` prefixes every message."""
    data = _parse_yaml(text, source)
    if not isinstance(data, dict):
        raise SpecError([f"{source}: must be a mapping at the top level"])
    try:
        spec = PlatformSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError([f"{source}: {p}: {m}" for p, m in _pydantic_problems(err)]) from None
    problems = check_references(spec) or check_image_pins(spec)
    if problems:
        raise SpecError([f"{source}: {p}: {m}" for p, m in problems])
    return spec


def _parse_yaml(text: str, source: str) -> Any:
    """The spec's data, parsed once: libyaml composes the nodes (with their lines, for the
    duplicate-key check) and the safe constructor builds the data from those same nodes. On
    a YAML error the pure-Python parser runs again, so the message is always PyYAML's."""
    try:
        return _compose_and_construct(text, source, _FastLoader)
    except yaml.YAMLError:
        pass
    try:
        return _compose_and_construct(text, source, yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise SpecError([f"{source}: invalid YAML: {_yaml_message(err)}"]) from None


def _compose_and_construct(text: str, source: str, loader_class: Any) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        problems = _node_problems(node)
        if problems:
            raise SpecError([f"{source}: {p}: {m}" for p, m in problems])
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _safe_load_all(text: str) -> list[Any]:
    """Every document of `text` (libyaml when it can; PyYAML's messages on errors)."""
    try:
        return list(yaml.load_all(text, Loader=_FastLoader))
    except yaml.YAMLError:
        return list(yaml.safe_load_all(text))


def _yaml_message(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


MAX_DEPTH = 64
"""Deepest nesting a spec may use; the real spec nests about 10 levels."""
MAX_NODES = 200_000
"""Most YAML nodes a spec may expand to, aliases counted at every use (about 5,000 today)."""


def _node_problems(root: yaml.Node | None) -> list[tuple[str, str]]:
    """`(spec path, message)` for what makes a document unfit to be a spec, before it is built:
    a key given twice in one mapping, an alias that contains itself, nesting deeper than
    MAX_DEPTH, or aliases that expand to more than MAX_NODES nodes (a "billion laughs" file).
    Iterative, and every node's subtree size is counted once, so hostile input stays cheap."""
    problems: list[tuple[str, str]] = []
    size: dict[int, int] = {}  # expanded size of each finished node
    # Each frame: (node, spec path, depth, children pushed?)
    stack: list[tuple[yaml.Node, str, int, bool]] = [] if root is None else [(root, "", 0, False)]
    open_nodes: set[int] = set()
    while stack:
        node, path, depth, expanded = stack.pop()
        if expanded:
            open_nodes.discard(id(node))
            size[id(node)] = 1 + sum(size.get(id(c), 1) for c in _children(node))
            if size[id(node)] > MAX_NODES:
                return [
                    (
                        path or "(document)",
                        f"expands to more than {MAX_NODES} YAML nodes (aliases count at every use)",
                    )
                ]
            continue
        if id(node) in open_nodes:
            return [(path, "an alias refers to a node that contains it (recursive alias)")]
        if id(node) in size:
            continue  # an alias of a finished node: counted, checked
        if depth > MAX_DEPTH:
            return [(path, f"nested deeper than {MAX_DEPTH} levels")]
        open_nodes.add(id(node))
        stack.append((node, path, depth, True))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                if key in seen:
                    problems.append((child, f"duplicate key (line {key_node.start_mark.line + 1})"))
                seen.add(key)
                children += [(key_node, child), (value_node, child)]
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack += [(child, where, depth + 1, False) for child, where in reversed(children)]
    return problems


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors(include_url=False):
        loc = [str(part) for part in e["loc"] if not _is_union_tag(part)]
        problems.append((_format_path(loc), _message(e)))
    return problems


def _is_union_tag(part: object) -> bool:
    # pydantic adds the member type's name to `loc` for unions, e.g. 'function-after[...]'.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float"})


def _format_path(loc: list[str]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _message(e: Any) -> str:
    kind = e["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    message = str(e["msg"])
    return message.removeprefix("Value error, ")
