"""Releases as reviewed spec edits: change one value of platform.yaml and nothing else.

A release in GitOps is a commit to the source of truth, so promoting an image edits
`platform.yaml` the way a careful person would: every comment, blank line, key order and
quoting style stays, and only the promoted value changes. ruamel.yaml's round-trip composer
gives the exact source position of every node; the edit replaces the text of those nodes and
nothing around them. Where the spec has no entry yet, one line in the style of its siblings is
added (block mappings) or the flow mapping is extended. The result is parsed back and checked
to hold exactly the requested pin before anyone writes it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from platformgen.errors import PlatformgenError, SpecError
from platformgen.spec.load import parse_spec
from platformgen.spec.model import ImagePin, PlatformSpec

TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ReleaseError(PlatformgenError):
    """A release request that cannot be carried out (bad reference, unknown name, policy)."""


@dataclass(frozen=True)
class ImageReference:
    """What `set-image` was asked to pin: an optional repository and a tag or a digest."""

    repository: str | None
    tag: str | None = None
    digest: str | None = None

    @property
    def pin(self) -> ImagePin:
        return ImagePin(tag=self.tag, digest=self.digest)

    def __str__(self) -> str:
        where = self.repository or ""
        return f"{where}@{self.digest}" if self.digest else f"{where}:{self.tag}"


def parse_reference(text: str) -> ImageReference:
    """`[repository]:tag` or `[repository]@sha256:<64 hex>`; anything else is refused."""
    rest, at, digest = text.partition("@")
    if at:
        if not DIGEST.match(digest):
            raise ReleaseError(
                f"image reference {text!r}: the digest must be sha256: and 64 lowercase hex "
                "characters"
            )
        if re.search(r":[^/]*$", rest):
            raise ReleaseError(
                f"image reference {text!r}: give a tag or a digest, not both (the digest alone "
                "names the image)"
            )
        return ImageReference(repository=rest or None, digest=digest)
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon <= slash:
        raise ReleaseError(
            f"image reference {text!r}: needs a tag (':<tag>') or a digest ('@sha256:<hex>')"
        )
    repository, tag = rest[:colon], rest[colon + 1 :]
    if not TAG.match(tag):
        raise ReleaseError(
            f"image reference {text!r}: {tag!r} is not a valid tag "
            "([A-Za-z0-9_][A-Za-z0-9_.-], at most 128 characters)"
        )
    return ImageReference(repository=repository or None, tag=tag)


def effective_reference(spec: PlatformSpec, component: str, environment: str) -> ImageReference:
    """The tag or digest `component` runs with in `environment`."""
    env = spec.environments[environment]
    repository = spec.components[component].image
    pin = env.images.get(component)
    if pin is not None and pin.digest is not None:
        return ImageReference(repository, digest=pin.digest)
    if pin is not None and pin.tag is not None:
        return ImageReference(repository, tag=pin.tag)
    return ImageReference(repository, tag=env.image_tag or spec.defaults.image_tag)


def requires_digests(spec: PlatformSpec, environment: str) -> bool:
    """Whether the spec marks `environment` as accepting only digests."""
    return bool(getattr(spec.environments[environment], "require_digests", False))


# --- the text edit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def _compose(text: str) -> MappingNode:
    node = YAML(typ="rt").compose(io.StringIO(text))
    if not isinstance(node, MappingNode):
        raise ReleaseError("the spec is not a mapping")
    return node


def _entry(node: MappingNode, key: str) -> tuple[ScalarNode, Node] | None:
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def _scalar(value: str, style: str | None) -> str:
    """`value` in the quoting style of the scalar it replaces; plain only where plain YAML
    reads it back as that same string."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style is None:
        try:
            if yaml.safe_load(value) == value and "#" not in value:
                return value
        except yaml.YAMLError:
            pass
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flow_pair(key: str, value: str, style: str | None = '"') -> str:
    return f"{key}: {_scalar(value, style)}"


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Index just after the newline that ends the line holding `index`."""
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _block_insert_at(text: str, mapping: MappingNode) -> int:
    """Where a new last entry of a block mapping goes: the start of the line after its last
    value. A block collection's end mark lies at the next token (possibly lines further on),
    so follow the last values down to a scalar or flow collection, whose end is exact."""
    node: Node = mapping.value[-1][1]
    while isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    return _line_end(text, node.end_mark.index)


def _flow_with(text: str, mapping: MappingNode, drop: set[str], add: list[str]) -> _Edit:
    """Rewrite a flow mapping, keeping the source text of every entry not dropped."""
    kept = [
        text[k.start_mark.index : v.end_mark.index]
        for k, v in mapping.value
        if not (isinstance(k, ScalarNode) and k.value in drop)
    ]
    return _Edit(
        mapping.start_mark.index, mapping.end_mark.index, "{" + ", ".join(kept + add) + "}"
    )


def _pin_edits(text: str, pin_node: MappingNode, key: str, value: str) -> list[_Edit]:
    """Set `key` (tag or digest) in an existing pin mapping and drop the other one."""
    other = "tag" if key == "digest" else "digest"
    current = _entry(pin_node, key)
    stale = _entry(pin_node, other)
    if pin_node.flow_style:
        if current is not None and stale is None:
            node = current[1]
            style = node.style if isinstance(node, ScalarNode) else '"'
            return [_Edit(node.start_mark.index, node.end_mark.index, _scalar(value, style))]
        if current is not None:
            style = current[1].style if isinstance(current[1], ScalarNode) else '"'
        else:
            style = stale[1].style if stale and isinstance(stale[1], ScalarNode) else '"'
        edit = _flow_with(text, pin_node, {key, other}, [_flow_pair(key, value, style)])
        return [edit]
    edits = []
    if current is not None:
        node = current[1]
        style = node.style if isinstance(node, ScalarNode) else '"'
        edits.append(_Edit(node.start_mark.index, node.end_mark.index, _scalar(value, style)))
        if stale is not None:
            start = _line_start(text, stale[0].start_mark.index)
            edits.append(_Edit(start, _line_end(text, stale[1].end_mark.index - 1), ""))
    elif stale is not None:
        k, v = stale
        style = v.style if isinstance(v, ScalarNode) else '"'
        edits.append(_Edit(k.start_mark.index, v.end_mark.index, f"{key}: {_scalar(value, style)}"))
    else:
        at = _block_insert_at(text, pin_node)
        indent = " " * pin_node.value[0][0].start_mark.column
        edits.append(_Edit(at, at, f"{indent}{key}: {_scalar(value, None)}\n"))
    return edits


def _child_indent(parent: MappingNode, fallback: int) -> str:
    return " " * (parent.value[0][0].start_mark.column if parent.value else fallback)


def set_pin(text: str, environment: str, component: str, key: str, value: str) -> str:
    """`text` with `environments.<environment>.images.<component>.<key>` set to `value`
    (key: tag or digest; the other one is removed), every other byte unchanged."""
    root = _compose(text)
    envs = _entry(root, "environments")
    if envs is None or not isinstance(envs[1], MappingNode):
        raise ReleaseError("the spec has no environments mapping")
    env = _entry(envs[1], environment)
    if env is None:
        raise ReleaseError(f"environments.{environment}: no such environment")
    env_node = env[1]
    if not isinstance(env_node, MappingNode):
        raise ReleaseError(f"environments.{environment}: is not a mapping")
    pin_text = "{" + _flow_pair(key, value) + "}"
    images = _entry(env_node, "images")
    if images is None:
        if env_node.flow_style or not env_node.value:
            new_text = f"images: {{{component}: {pin_text}}}"
            edit = _flow_with(text, env_node, set(), [new_text])
        else:
            at = _block_insert_at(text, env_node)
            indent = _child_indent(env_node, env[0].start_mark.column + 2)
            block = f"{indent}images:\n{indent}  {component}: {pin_text}\n"
            edit = _Edit(at, at, block)
        return _apply(text, [edit])
    images_node = images[1]
    if not isinstance(images_node, MappingNode):
        raise ReleaseError(f"environments.{environment}.images: is not a mapping")
    pin = _entry(images_node, component)
    if pin is None:
        if images_node.flow_style or not images_node.value:
            edit = _flow_with(text, images_node, set(), [f"{component}: {pin_text}"])
        else:
            at = _block_insert_at(text, images_node)
            indent = _child_indent(images_node, images[0].start_mark.column + 2)
            edit = _Edit(at, at, f"{indent}{component}: {pin_text}\n")
        return _apply(text, [edit])
    if not isinstance(pin[1], MappingNode):
        raise ReleaseError(f"environments.{environment}.images.{component}: is not a mapping")
    return _apply(text, _pin_edits(text, pin[1], key, value))


def _apply(text: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


# --- the commands' pure cores ------------------------------------------------------------------


def set_image(
    text: str, spec: PlatformSpec, component: str, reference: str, environment: str, source: str
) -> str:
    """The spec text with `component` pinned to `reference` in `environment`, validated."""
    if component not in spec.components:
        raise ReleaseError(f"{source}: components.{component}: no such component")
    if environment not in spec.environments:
        raise ReleaseError(f"{source}: environments.{environment}: no such environment")
    ref = parse_reference(reference)
    repository = spec.components[component].image
    if ref.repository is not None and ref.repository != repository:
        raise ReleaseError(
            f"image reference {reference!r}: {component} runs {repository!r} "
            f"(components.{component}.image); pin a tag or digest of that repository"
        )
    if ref.tag is not None and requires_digests(spec, environment):
        raise ReleaseError(
            f"environments.{environment} requires digests: {reference!r} is a tag; "
            "pin @sha256:<digest>"
        )
    key, value = ("digest", ref.digest) if ref.digest else ("tag", ref.tag)
    assert value is not None
    edited = set_pin(text, environment, component, key, value)
    try:
        new_spec = parse_spec(edited, source=source)
    except SpecError as err:  # pragma: no cover - a bug in the edit, not in the request
        raise AssertionError(f"the edited spec does not load: {err.problems}") from err
    got = new_spec.environments[environment].images.get(component)
    if got != ref.pin:
        raise AssertionError(f"the edit pinned {got}, not {ref.pin}")
    return edited


def promote(
    text: str, spec: PlatformSpec, component: str, source_env: str, target_env: str, source: str
) -> str:
    """The spec text with `target_env` running exactly the image `source_env` runs."""
    for env in (source_env, target_env):
        if env not in spec.environments:
            raise ReleaseError(f"{source}: environments.{env}: no such environment")
    if component not in spec.components:
        raise ReleaseError(f"{source}: components.{component}: no such component")
    ref = effective_reference(spec, component, source_env)
    if ref.digest is None and requires_digests(spec, target_env):
        raise ReleaseError(
            f"environments.{target_env} requires digests, but {component} runs the floating "
            f"tag {ref.tag!r} in {source_env}: pin a digest there first "
            f"(platformgen set-image {component} {ref.repository}@sha256:<digest> "
            f"--env {source_env})"
        )
    return set_image(text, spec, component, str(ref), target_env, source)


# --- model versions ----------------------------------------------------------------------------

MODEL_VERSION_ENV = "MLP_MODEL_VERSION"
"""The serving component's setting for the registry version it serves (components/serve: every
option of `mlp_serve` has an environment variable; unset, it follows the production pointer)."""
_MODEL_FLAGS = ("--model-name", "--model")
_REGISTRY_FLAGS = ("--registry",)


@dataclass(frozen=True)
class ServedModel:
    """A model as the spec serves it: the InferenceService component and its registry."""

    model: str
    component: str
    registry: str | None
    """The registry root the component reads (`--registry=` or MLP_REGISTRY), if the spec says."""


def _option(args: tuple[str, ...], flags: tuple[str, ...]) -> str | None:
    """The value of the last of `flags` in `args` (`--flag=value` or `--flag value`)."""
    found = None
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in flags and equals:
            found = value
        elif arg in flags and index + 1 < len(args):
            found = args[index + 1]
    return found


def served_model(spec: PlatformSpec, model: str, source: str) -> ServedModel:
    """The InferenceService component that serves `model`: the one whose arguments
    (`--model-name=`) or environment (MLP_MODEL) name it, as the serving component reads them."""
    found = []
    for name, component in sorted(spec.components.items()):
        if component.kind != "InferenceService":
            continue
        settings = {**component.config, **component.env}
        serves = _option(component.args, _MODEL_FLAGS) or settings.get("MLP_MODEL")
        if serves == model:
            registry = _option(component.args, _REGISTRY_FLAGS) or settings.get("MLP_REGISTRY")
            found.append(ServedModel(model=model, component=name, registry=registry))
    if not found:
        raise ReleaseError(
            f"{source}: no InferenceService component serves model {model!r} "
            "(components.<name>.args --model-name or env MLP_MODEL)"
        )
    if len(found) > 1:
        names = ", ".join(f"components.{s.component}" for s in found)
        raise ReleaseError(f"{source}: model {model!r} is served by several components: {names}")
    served = found[0]
    if _option(spec.components[served.component].args, ("--version",)) is not None:
        raise ReleaseError(
            f"{source}: components.{served.component}.args: --version fixes the model version in "
            f"every environment; remove it so each environment can pin its own"
        )
    return served


def pin_model_version(
    text: str,
    spec: PlatformSpec,
    served: ServedModel,
    version: int,
    environment: str,
    source: str,
) -> str:
    """The spec text with `environment` serving `version` of `served.model`:
    `environments.<env>.components.<component>.env.MLP_MODEL_VERSION`, every other byte kept.
    The registry checks (gate, metric floors) come first and are the caller's."""
    if environment not in spec.environments:
        raise ReleaseError(f"{source}: environments.{environment}: no such environment")
    if version < 1:
        raise ReleaseError(f"model version {version}: registry versions count from 1")
    path = ("environments", environment, "components", served.component, "env", MODEL_VERSION_ENV)
    edited = set_value(text, path, str(version))
    try:
        new_spec = parse_spec(edited, source=source)
    except SpecError as err:  # pragma: no cover - a bug in the edit, not in the request
        raise AssertionError(f"the edited spec does not load: {err.problems}") from err
    override = new_spec.environments[environment].components.get(served.component)
    got = (override.env or {}).get(MODEL_VERSION_ENV) if override else None
    if got != str(version):
        raise AssertionError(f"the edit set {MODEL_VERSION_ENV}={got!r}, not {version}")
    return edited


def set_value(text: str, path: tuple[str, ...], value: str) -> str:
    """`text` with the string at the mapping path `path` set to `value`, every other byte kept.

    An existing scalar is replaced in its own quoting style. Where the path stops early, one
    entry goes into the deepest mapping that exists, holding the rest of the path as flow
    mappings: a new line in the indentation of its siblings (block) or one more item (flow)."""
    node: Node = _compose(text)
    for depth, key in enumerate(path):
        where = ".".join(path[:depth]) or "the spec"
        if not isinstance(node, MappingNode):
            raise ReleaseError(f"{where}: is not a mapping")
        found = _entry(node, key)
        if found is None:
            inner = _scalar(value, None)
            for name in reversed(path[depth + 1 :]):
                inner = f"{{{name}: {inner}}}"
            entry = f"{key}: {inner}"
            if node.flow_style or not node.value:
                return _apply(text, [_flow_with(text, node, set(), [entry])])
            at = _block_insert_at(text, node)
            indent = _child_indent(node, 0)
            return _apply(text, [_Edit(at, at, f"{indent}{entry}\n")])
        node = found[1]
    if not isinstance(node, ScalarNode):
        raise ReleaseError(f"{'.'.join(path)}: is not a scalar")
    return _apply(
        text, [_Edit(node.start_mark.index, node.end_mark.index, _scalar(value, node.style))]
    )
