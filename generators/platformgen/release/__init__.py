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
#
# What an environment serves is `components.<c>.model` (name, default version) and, per
# environment, `model.version` (the stable revision) and `canary` ({trafficPercent, version}).
# The path of a new version is candidate -> canary -> production:
#
#   promote-model digits M --env prod --canary   canary: {trafficPercent, version: M}; KServe
#                                                 gives the revision pinned to M that share, the
#                                                 previously rolled-out revision (N) the rest
#   promote-model digits M --env prod             model.version: M, no canary: KServe moves all
#                                                 traffic to the revision serving M; the registry's
#                                                 production pointer moves N -> M (compare-and-swap)
#   promote-model digits --env prod --abort-canary  no canary: a new revision serving N takes all
#
# Every step re-checks the registry (gate passed, the environment's floors) except the abort.

DEFAULT_CANARY_PERCENT = 10
"""Share a new canary gets unless `--traffic` says otherwise."""
_REGISTRY_FLAGS = ("--registry",)


@dataclass(frozen=True)
class ServedModel:
    """A model as the spec serves it: the InferenceService component and its registry."""

    model: str
    component: str
    registry: str | None
    """The registry root the component reads (`--registry=` or MLP_REGISTRY), if the spec says."""
    production_environment: str | None = None
    """`model.productionEnvironment`: where a full promotion moves the registry's pointer."""


@dataclass(frozen=True)
class Rollout:
    """What one environment serves: the stable version, and the canary if one is in flight."""

    stable: int | str
    pinned: bool
    """The environment pins `stable` (`environments.<env>.components.<c>.model.version`)."""
    canary: int | None = None
    traffic_percent: int | None = None

    def __str__(self) -> str:
        text = f"version {self.stable}"
        if self.canary is not None:
            text += f", canary version {self.canary} at {self.traffic_percent}%"
        return text


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
    """The InferenceService component whose `model.name` is `model`."""
    found = []
    for name, component in sorted(spec.components.items()):
        if component.model is None or component.model.name != model:
            continue
        settings = {**component.config, **component.env}
        registry = _option(component.args, _REGISTRY_FLAGS) or settings.get("MLP_REGISTRY")
        found.append(ServedModel(model, name, registry, component.model.production_environment))
    if not found:
        raise ReleaseError(
            f"{source}: no InferenceService component serves model {model!r} "
            "(components.<name>.model.name)"
        )
    if len(found) > 1:
        names = ", ".join(f"components.{s.component}" for s in found)
        raise ReleaseError(f"{source}: model {model!r} is served by several components: {names}")
    return found[0]


def rollout(spec: PlatformSpec, served: ServedModel, environment: str) -> Rollout:
    """What `environment` serves of `served.model`, as the spec says."""
    component = spec.components[served.component]
    assert component.model is not None
    override = spec.environments[environment].components.get(served.component)
    pin = override.model if override is not None else None
    canary = override.canary if override is not None else None
    return Rollout(
        stable=pin.version if pin is not None else component.model.version,
        pinned=pin is not None,
        canary=canary.version if canary is not None else None,
        traffic_percent=canary.traffic_percent if canary is not None else None,
    )


def plan_rollout(
    spec: PlatformSpec,
    served: ServedModel,
    environment: str,
    version: int | None,
    *,
    canary: bool = False,
    traffic_percent: int | None = None,
    abort: bool = False,
    source: str = "platform.yaml",
) -> Rollout:
    """The rollout `environment` moves to: a canary of `version`, `version` in full, or (abort)
    the stable version alone. Refuses requests that would lose track of what serves."""
    if environment not in spec.environments:
        raise ReleaseError(f"{source}: environments.{environment}: no such environment")
    where = f"{source}: environments.{environment}.components.{served.component}"
    now = rollout(spec, served, environment)
    if traffic_percent is not None and not canary:
        raise ReleaseError("promote-model: --traffic sets the canary's share; add --canary")
    if abort and canary:
        raise ReleaseError("promote-model: --canary and --abort-canary: choose one")
    if abort:
        if now.canary is None:
            raise ReleaseError(f"{where}: no canary in flight to abort (serving {now})")
        if version is not None and version != now.canary:
            raise ReleaseError(
                f"{where}: the canary in flight serves version {now.canary}, not {version}"
            )
        return Rollout(stable=now.stable, pinned=now.pinned)
    if version is None:
        raise ReleaseError("promote-model: give the version to promote (or --abort-canary)")
    if now.canary is not None and now.canary != version:
        raise ReleaseError(
            f"{where}: canary version {now.canary} is in flight: promote it "
            f"(platformgen promote-model {served.model} {now.canary} --env {environment}) or "
            f"abort it (--abort-canary) before starting version {version}"
        )
    if not canary:
        if now.canary is None and now.pinned and now.stable == version:
            raise ReleaseError(f"{where}: already serves {served.model} version {version}")
        return Rollout(stable=version, pinned=True)
    if not now.pinned:
        raise ReleaseError(
            f"{where}: a canary needs the stable version pinned (model.version), so the spec "
            f"names what the rest of the traffic gets; serving {now.stable} now: pin it first "
            f"(platformgen promote-model {served.model} <stable version> --env {environment})"
        )
    if now.stable == version:
        raise ReleaseError(f"{where}: version {version} is the stable version already")
    share = traffic_percent or now.traffic_percent or DEFAULT_CANARY_PERCENT
    if not 1 <= share <= 99:
        raise ReleaseError(f"--traffic {share}: a canary gets 1-99 percent of the traffic")
    return Rollout(stable=now.stable, pinned=True, canary=version, traffic_percent=share)


def edit_rollout(
    text: str,
    spec: PlatformSpec,
    served: ServedModel,
    environment: str,
    wanted: Rollout,
    source: str,
) -> str:
    """The spec text with `environment` serving `wanted`, every other byte kept: only
    `model.version` and `canary` of the component's environment entry change."""
    base = ("environments", environment, "components", served.component)
    now = rollout(spec, served, environment)
    edited = text
    if wanted.stable != now.stable or wanted.pinned != now.pinned:
        edited = set_value(edited, (*base, "model", "version"), str(wanted.stable), plain=True)
    if wanted.canary is None:
        if now.canary is not None:
            edited = remove_value(edited, (*base, "canary"))
    else:
        edited = set_value(
            edited, (*base, "canary", "trafficPercent"), str(wanted.traffic_percent), plain=True
        )
        edited = set_value(edited, (*base, "canary", "version"), str(wanted.canary), plain=True)
    try:
        new_spec = parse_spec(edited, source=source)
    except SpecError as err:  # pragma: no cover - a bug in the edit, not in the request
        raise AssertionError(f"the edited spec does not load: {err.problems}") from err
    got = rollout(new_spec, served, environment)
    if got != wanted:
        raise AssertionError(f"the edit gives {got}, not {wanted}")
    return edited


@dataclass(frozen=True)
class RegistryCheck:
    """The registry as `promote-model` read it: the version passed the checks."""

    root: str
    production: int | None
    """The production pointer when read: the compare-and-swap's expected value."""


def check_registry(
    spec: PlatformSpec,
    served: ServedModel,
    version: int,
    environment: str,
    registry: str | None,
    source: str,
) -> RegistryCheck:
    """Refuse `version` unless the registry holds it, its gate passed and its metrics meet the
    environment's floors (`environments.<env>.minModelMetrics`)."""
    root = registry or served.registry
    if not root:
        raise ReleaseError(
            f"{source}: components.{served.component}: no --registry= argument or MLP_REGISTRY "
            "says where the registry is; pass --registry"
        )
    try:
        from mlp_common.registry import ModelRegistry, RegistryError, promotion_problems
    except ImportError as err:
        raise ReleaseError(
            "promote-model reads the model registry with mlp_common (components/common); "
            "install the ML packages with `make venv`"
        ) from err
    floors = spec.environments[environment].min_model_metrics
    where = f"{source}: environments.{environment}"
    try:
        registry_ = ModelRegistry(root)
        entry = registry_.get(served.model, version)
        production = registry_.pointer(served.model, "production")
    except RegistryError as err:
        raise ReleaseError(f"{where}: cannot serve it: registry {root}: {err}") from err
    except Exception as err:  # the store's own errors (network, credentials): not our bug
        raise ReleaseError(
            f"{where}: cannot read the registry {root}: {type(err).__name__}: {err} "
            "(pass --registry, or give the object store's AWS_* settings)"
        ) from err
    problems = promotion_problems(entry, floors)
    if problems:
        floors_from = f" (floors: environments.{environment}.minModelMetrics)" if floors else ""
        raise ReleaseError(
            f"{where}: {served.model} version {version} may not be served: "
            + "; ".join(problems)
            + floors_from
        )
    return RegistryCheck(root=root, production=production)


def move_production_pointer(
    check: RegistryCheck, served: ServedModel, version: int, environment: str
) -> None:
    """Point the registry's `production` at `version`, by compare-and-swap against the pointer
    `check` read: refused (nothing changes) if another promotion moved it meanwhile."""
    from mlp_common.registry import ModelRegistry, RegistryError

    if check.production == version:
        return
    try:
        ModelRegistry(check.root).promote(
            served.model,
            version,
            reason=f"platformgen promote-model --env {environment}",
            expected=check.production,
        )
    except RegistryError as err:
        raise ReleaseError(f"registry {check.root}: {err}; platform.yaml was not changed") from err


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
