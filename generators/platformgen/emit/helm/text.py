"""Go template text from built objects, written from data.

A template is the built object (plain data) with typed nodes where Helm fills something in:
the build's `Placeholder`s (build/chart.py) at the tunable scalars, and the emitter's own nodes
as values (`Action`, `Block`) or keys (`When`: a field an optional tunable adds or removes,
wrapped in `{{- if }}`; `Splice`: map entries a helper renders). `write` walks the data: a
subtree without nodes is serialized by serialize.to_yaml and indented where it sits (so the YAML
is byte for byte what the kustomize tree holds), a node becomes its `{{ ... }}` action. No
sentinels, no regexes over serialized text: the only text a placeholder leaves is where a builder
formatted it into a longer string (an annotation such as "digits version 3"); there its path sits
between build/chart.py's OPEN (with a per-process nonce) and CLOSE, and `_line` splits on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from platformgen.build.chart import CLOSE, OPEN, Placeholder
from platformgen.naming import Manifest
from platformgen.serialize import FIRST_KEYS, HEADER, to_yaml


def copy_data(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists and immutable scalars, what builders return):
    `copy.deepcopy` without its memo and dispatch, about 10x faster on manifests."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value


def escape(text: str) -> str:
    """Literal `{{` in our data (alert annotations, the KFP pipeline spec) as Go template text."""
    return text.replace("{{", '{{ "{{" }}')


@dataclasses.dataclass(frozen=True)
class Action:
    """A scalar value: `{{ expr }}`; with `when_set`, the field only when that value is set."""

    expr: str
    when_set: str | None = None


@dataclasses.dataclass(frozen=True)
class Block:
    """A sub-object: `key:` and the expression's YAML, nindented under it. With `guard`, the
    field only when `guard` renders non-empty (`with`), and `.` (that text) is the YAML."""

    expr: str
    guard: str | None = None


@dataclasses.dataclass(frozen=True)
class Splice:
    """A key standing for entries the expression renders, beside the map's fixed entries."""

    expr: str


@dataclasses.dataclass(frozen=True)
class When:
    """A key whose field is rendered only if `condition` holds (an optional tunable's)."""

    key: str
    condition: str


KEY_NODES = (Splice, When)


def _action(value: Action | Placeholder) -> Action:
    if isinstance(value, Placeholder):
        return Action(f"$c.{value.path} | toJson", f"$c.{value.path}" if value.optional else None)
    return value


def _sort_key(key: Any) -> str:
    """Keys in serialize's order: a `When` where its field sits, a `Splice` before the fixed
    entries (waivers' annotations first)."""
    if isinstance(key, When):
        return key.key
    if isinstance(key, Splice):
        return ""
    return str(key)


def _items(value: Mapping[Any, Any], top: bool) -> list[tuple[Any, Any]]:
    """serialize's key order and filter (None and {} dropped) over keys that may be nodes."""
    first = [k for k in FIRST_KEYS if top and k in value]
    rest = sorted((k for k in value if k not in first), key=_sort_key)
    return [(k, value[k]) for k in first + rest if value[k] is not None and value[k] != {}]


def _templated(value: Any) -> bool:
    """Whether `value` holds a node (a typed placeholder, an emitter node) anywhere."""
    if isinstance(value, (Action, Block, Placeholder)):
        return True
    if isinstance(value, dict):
        return any(isinstance(k, KEY_NODES) or _templated(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


@lru_cache(maxsize=4096)
def _key_text(key: str) -> str:
    return to_yaml({key: 0}, header=False).removesuffix(": 0\n")


class _Writer:
    def __init__(self, placeholders: Iterable[Placeholder]) -> None:
        self.by_path = {p.path: p for p in placeholders}
        self.lines: list[str] = []

    def mapping(self, value: Mapping[Any, Any], indent: int, dash: bool, top: bool) -> None:
        pad = " " * indent
        for n, (key, item) in enumerate(_items(value, top)):
            lead = " " * (indent - 2) + "- " if dash and n == 0 else pad
            if isinstance(key, Splice):
                if lead != pad:
                    raise AssertionError(f"spliced entries open a list item: {key.expr}")
                self.lines.append(f"{pad}{{{{- {key.expr} | nindent {indent} }}}}")
            elif isinstance(key, When):
                if lead != pad:
                    raise AssertionError(f"conditional field opens a list item: {key.key}")
                self.lines.append(f"{pad}{{{{- if {key.condition} }}}}")
                self.entry(key.key, item, indent, lead)
                self.lines.append(f"{pad}{{{{- end }}}}")
            else:
                self.entry(key, item, indent, lead)

    def entry(self, key: str, value: Any, indent: int, lead: str) -> None:
        if not _templated(value):
            self.plain({key: value}, indent, lead)
            return
        head = f"{lead}{_key_text(key)}:"
        pad = " " * indent
        if isinstance(value, Block):
            if value.guard is not None:
                self.lines.append(f"{pad}{{{{- with {value.guard} }}}}")
                self.lines.append(head)
                self.lines.append(f"{pad}  {{{{- . | nindent {indent + 2} }}}}")
                self.lines.append(f"{pad}{{{{- end }}}}")
            else:
                self.lines.append(head)
                self.lines.append(f"{pad}  {{{{- {value.expr} | nindent {indent + 2} }}}}")
        elif isinstance(value, (Action, Placeholder)):
            self.scalar(head + " ", value, lead)
        elif isinstance(value, dict):
            self.lines.append(head)
            self.mapping(value, indent + 2, False, False)
        elif isinstance(value, list):
            self.lines.append(head)
            self.sequence(value, indent + 2)
        else:
            raise AssertionError(f"unexpected node under {key}: {value!r}")

    def sequence(self, values: list[Any], indent: int) -> None:
        for value in values:
            if not _templated(value):
                self.plain([value], indent, " " * indent)
            elif isinstance(value, dict):
                self.mapping(value, indent + 2, True, "apiVersion" in value)
            elif isinstance(value, (Action, Placeholder)):
                self.scalar(" " * indent + "- ", value, " " * indent)
            else:
                raise AssertionError(f"templated list item not supported: {value!r}")

    def scalar(self, prefix: str, value: Action | Placeholder, lead: str) -> None:
        action = _action(value)
        line = prefix + "{{ " + action.expr + " }}"
        self.lines.extend(_guarded(line, lead, action.when_set))

    def plain(self, value: Any, indent: int, lead: str) -> None:
        """`value` (a one-key map or a one-item list) as serialize writes it, at `indent`."""
        text = to_yaml(value, header=False)
        pad = " " * indent
        for n, line in enumerate(text.splitlines()):
            line = (lead if n == 0 else pad) + line if line else line
            self.lines.extend(self._line(line))

    def _line(self, line: str) -> list[str]:
        """A serialized line: literal `{{` escaped, and placeholders a builder formatted into a
        string made actions (the line only when the first optional one is set)."""
        if OPEN not in line:
            return [escape(line)]
        out: list[str] = []
        first_optional: str | None = None
        for n, part in enumerate(line.split(OPEN)):
            path, found, rest = part.partition(CLOSE) if n else ("", "", part)
            placeholder = self.by_path.get(path) if found else None
            if placeholder is None:
                out.append(escape((OPEN if n else "") + part))
                continue
            action = _action(placeholder)
            first_optional = first_optional or action.when_set
            out.append("{{ " + action.expr + " }}" + escape(rest))
        text = "".join(out)
        return _guarded(text, text, first_optional)


def _guarded(line: str, lead: str, when_set: str | None) -> list[str]:
    """`line`, only when `when_set` is set (indented as `lead` is)."""
    if when_set is None:
        return [line]
    pad = lead[: len(lead) - len(lead.lstrip(" "))]
    return [f'{pad}{{{{- if not (kindIs "invalid" {when_set}) }}}}', line, f"{pad}{{{{- end }}}}"]


def write(
    document: Manifest,
    placeholders: Iterable[Placeholder] = (),
    preamble: str = "",
    condition: str | None = None,
) -> str:
    """The template of `document`: `preamble` (variables) only when the text uses them, the
    whole object only if `condition` holds."""
    writer = _Writer(placeholders)
    writer.mapping(document, 0, False, True)
    body = "\n".join(writer.lines)
    if OPEN in body:
        raise AssertionError(f"a placeholder of another component in: {body[:200]}")
    uses = body + (condition or "")
    head = HEADER + (preamble if "$c." in uses else "")
    if condition is not None:
        return head + "{{- if " + condition + " }}\n" + body + "\n{{- end }}\n"
    return head + body + "\n"
