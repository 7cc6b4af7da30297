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
from dataclasses import dataclass

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from platformgen.errors import ReleaseError


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


def _path_text(path: tuple[str, ...]) -> str:
    return ".".join(path) or "the spec"


def remove_value(text: str, path: tuple[str, ...]) -> str:
    """`text` without the entry at the mapping path `path` (its lines in a block mapping, its
    item in a flow mapping), every other byte kept; comments above it stay."""
    node: Node = _compose(text)
    parent_key: ScalarNode | None = None
    for depth, key in enumerate(path):
        if not isinstance(node, MappingNode):
            raise ReleaseError(f"{_path_text(path[:depth])}: is not a mapping")
        found = _entry(node, key)
        if found is None:
            raise ReleaseError(f"{_path_text(path[: depth + 1])}: not in the spec")
        if depth == len(path) - 1:
            k, v = found
            if node.flow_style:
                return _apply(text, [_flow_with(text, node, {key}, [])])
            last: Node = v
            while (
                isinstance(last, MappingNode | SequenceNode) and not last.flow_style and last.value
            ):
                item = last.value[-1]
                last = item[1] if isinstance(last, MappingNode) else item
            start = _line_start(text, k.start_mark.index)
            edits = [_Edit(start, _line_end(text, last.end_mark.index), "")]
            if len(node.value) == 1:  # the mapping would be empty: say so in flow style
                assert parent_key is not None
                at = parent_key.end_mark.index + 1  # after the key's colon
                edits.append(_Edit(at, at, " {}"))
            return _apply(text, edits)
        parent_key = found[0]
        node = found[1]
    raise ReleaseError("remove_value: empty path")


def set_value(text: str, path: tuple[str, ...], value: str, plain: bool = False) -> str:
    """`text` with the string at the mapping path `path` set to `value`, every other byte kept;
    `plain`: `value` is written as is (a number), never quoted.

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
            inner = value if plain else _scalar(value, None)
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
    written = value if plain else _scalar(value, node.style)
    return _apply(text, [_Edit(node.start_mark.index, node.end_mark.index, written)])
