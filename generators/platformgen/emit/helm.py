"""Helm emitter: `charts/<platform.name>/`, a chart of the same objects as base/ and overlays/.

The templates are the builders' own output. Each component is built once with *sentinels*
(unique strings) in place of every value an environment may change (kinds.tunables), and the
sentinels are then replaced by `{{ ... }}` actions on `.Values`. Optional tunables
(autoscaling, disruption budget, topology spread, canary) are built on and off, and whatever
they add or remove, an object or a field, is wrapped in `{{- if }}`. So a template reads like
the base object, differs from it only at the tunables, and a builder change reaches both
emitters at once. The values files come from the same resolution the overlays use
(`resolve.resolve`, `environments.image_pins`, `builders.pod.resources`), and the equivalence
test (tests/test_equivalence.py) proves `helm template -f values-<env>.yaml` equal to
`kustomize build overlays/<env>` on Helm 3 and 4.

Values hold only environment knobs. What the builders derive from the component is fixed in
the template: `secretEnv` entries (passed to the `env` helper as a fixed list and merged in the
builders' sorted order) and workload annotations that are not policy waivers (KServe's
deployment mode, beside the waivers helper). The waivers the builders derive (the Knative
queue-proxy's probe, the content-named Job's TTL) are read back from the built workload into
the values' `policyExceptions`, so one list feeds the helper and numbers `checkov.io/skipN`
as the builder does. Every object that carries the component's waivers (found by building with
a probe waiver: the workload, a Trainer TrainingRuntime) gets the helper; waivers only that
object has (JobSet's TTL) are fixed data merged under the values'.

Content-named objects (kinds.py `content_named`: Jobs, PipelineVersions) are not templated over
values. Their name is a hash of their content and their spec is immutable, so a template would
let a value change the content under an unchanged name (an upgrade the apiserver refuses, or
KFP's webhook). They exist only in environments, so each environment's objects are rendered
whole, as in `overlays/<env>/<group>/resources/`, into `templates/<group>-<kind>-<env>.yaml`,
guarded by the `environment` value that `values-<env>.yaml` sets (null in values.yaml, like
base, which has none). Their components have no values.

Object names and namespaces are literal (never `.Release.*`) and nothing reads `.Capabilities`:
Argo CD renders charts with its own release name and the target cluster's versions.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel

from platformgen import __version__
from platformgen.builders import Documents, build_component, build_platform
from platformgen.builders.pod import (
    CHECKOV_SKIP,
    KUBE_LINTER_IGNORE,
    KUBE_SCORE_IGNORE,
    KUBE_SCORE_REASON,
    resources,
    split_exception_annotations,
)
from platformgen.emit.kustomize import kebab
from platformgen.environments import identity, image_pins
from platformgen.kinds import OPTIONAL_TUNABLES, traits, tunables
from platformgen.naming import MANAGED_BY_LABEL, Manifest
from platformgen.resolve import ComponentView, resolve
from platformgen.serialize import HEADER, to_json, to_yaml
from platformgen.spec.model import (
    ENV_NAME,
    QUANTITY,
    Autoscaling,
    Canary,
    ComponentOverride,
    Defaults,
    DisruptionBudget,
    ImagePin,
    ModelPin,
    PlatformSpec,
    ResourceList,
    Resources,
    TopologySpread,
)
from platformgen.validate import KUBERNETES_VERSIONS

CHART_LABEL = "helm.sh/chart"
"""The label every Helm chart puts on its objects' metadata (with MANAGED_BY_LABEL = Helm)."""

KNOB_MODELS: dict[str, type[BaseModel]] = {
    "autoscaling": Autoscaling,
    "disruptionBudget": DisruptionBudget,
    "topologySpread": TopologySpread,
    "model": ModelPin,
    "canary": Canary,
}
"""The optional tunables' spec models: values, sentinels and schema all come from these."""

RESOURCE_NAMES = {"cpu": "cpu", "memory": "memory", "ephemeralStorage": "ephemeral-storage"}
"""ResourceList field -> Kubernetes resource name (values hold resources as the objects do)."""

_SENTINEL = re.compile(r"__pg(\d+)__")
_MARKED_KEY = re.compile(
    r"^(?P<indent> *)(?P<dash>- )?(?P<key>[^ :]+?)__if(?P<n>\d+)__:(?P<rest>.*)$"
)
_BLOCK_LINE = re.compile(r"^(?P<indent> *)(?P<dash>- )?(?P<key>[^ :]+): __pg(?P<n>\d+)__$")
_SPLICE_LINE = re.compile(r"^(?P<indent> *)__pg(?P<n>\d+)__: splice$")


def _copy(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists and immutable scalars, what builders return):
    `copy.deepcopy` without its memo and dispatch, about 10x faster on manifests."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _escape(text: str) -> str:
    """Literal `{{` in our data (alert annotations, the KFP pipeline spec) as Go template text."""
    return text.replace("{{", '{{ "{{" }}')


@dataclasses.dataclass
class _Knob:
    expr: str
    """Go template expression giving the value (rendered: `{{ expr | toJson }}`, say)."""
    value: str = ""
    """The values path alone (`$c.disruptionBudget.minAvailable`), for optional scalars."""
    block: bool = False
    """A sub-object: the whole line becomes `key:` plus the expression's YAML, nindented."""
    optional: bool = False
    """A scalar only rendered when the value is set (an optional field of a tunable's model)."""
    guard: str | None = None
    """A block only rendered when this expression is non-empty (`with`); `.` is the YAML."""
    splice: bool = False
    """Entries of the map it sits in: the expression's YAML, beside the map's fixed entries."""


class _Template:
    """Sentinels and conditions of one template, and the text they become."""

    def __init__(self) -> None:
        self.knobs: list[_Knob] = []
        self.conditions: list[str] = []

    def scalar(self, expr: str, optional: bool = False, value: str = "") -> str:
        self.knobs.append(_Knob(expr, value=value, optional=optional))
        return f"__pg{len(self.knobs) - 1}__"

    def block(self, expr: str, guard: str | None = None) -> str:
        self.knobs.append(_Knob(expr, block=True, guard=guard))
        return f"__pg{len(self.knobs) - 1}__"

    def splice(self, expr: str) -> str:
        """A key whose line becomes the entries `expr` renders, in the map holding the key."""
        self.knobs.append(_Knob(expr, splice=True))
        return f"__pg{len(self.knobs) - 1}__"

    def marked(self, key: str, condition: str) -> str:
        self.conditions.append(condition)
        return f"{key}__if{len(self.conditions) - 1}__"

    def text(self, document: Manifest, preamble: str = "", condition: str | None = None) -> str:
        """The template: `preamble` (variables) only when the text uses them."""
        body = _escape(to_yaml(document, header=False))
        lines = self._conditions(body.splitlines())
        lines = [
            out for line in lines for out in (self._knob_lines(line) if "__pg" in line else (line,))
        ]
        used = {int(n) for n in _SENTINEL.findall("\n".join(lines))}
        if used:
            raise AssertionError(f"sentinels left in template: {sorted(used)}")
        uses = "\n".join(lines) + (condition or "")
        head = HEADER + (preamble if "$c." in uses else "")
        if condition is not None:
            return head + "{{- if " + condition + " }}\n" + "\n".join(lines) + "\n{{- end }}\n"
        return head + "\n".join(lines) + "\n"

    def _conditions(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(lines):
            match = _MARKED_KEY.match(lines[i])
            if match is None:
                out.append(lines[i])
                i += 1
                continue
            if match["dash"]:
                raise AssertionError(f"conditional field opens a list item: {lines[i]}")
            indent, column = match["indent"], len(match["indent"])
            end = i + 1
            while end < len(lines) and (
                not lines[end] or len(lines[end]) - len(lines[end].lstrip(" ")) > column
            ):
                end += 1
            condition = self.conditions[int(match["n"])]
            out.append(f"{indent}{{{{- if {condition} }}}}")
            out.append(f"{indent}{match['key']}:{match['rest']}")
            out.extend(self._conditions(lines[i + 1 : end]))
            out.append(f"{indent}{{{{- end }}}}")
            i = end
        return out

    def _knob_lines(self, line: str) -> Iterator[str]:
        splice = _SPLICE_LINE.match(line)
        if splice is not None and self.knobs[int(splice["n"])].splice:
            indent = splice["indent"]
            yield f"{indent}{{{{- {self.knobs[int(splice['n'])].expr} | nindent {len(indent)} }}}}"
            return
        match = _BLOCK_LINE.match(line)
        if match is not None and self.knobs[int(match["n"])].block:
            knob = self.knobs[int(match["n"])]
            indent = match["indent"] + ("  " if match["dash"] else "")
            head = f"{match['indent']}{match['dash'] or ''}{match['key']}:"
            if knob.guard is not None:
                yield f"{indent}{{{{- with {knob.guard} }}}}"
                yield head
                yield f"{indent}  {{{{- . | nindent {len(indent) + 2} }}}}"
                yield f"{indent}{{{{- end }}}}"
                return
            yield head
            yield f"{indent}  {{{{- {knob.expr} | nindent {len(indent) + 2} }}}}"
            return
        found = [self.knobs[int(n)] for n in _SENTINEL.findall(line)]
        text = _SENTINEL.sub(lambda m: "{{ " + self.knobs[int(m[1])].expr + " }}", line)
        optional = [k for k in found if k.optional]
        if optional:
            indent = line[: len(line) - len(line.lstrip(" "))]
            yield f'{indent}{{{{- if not (kindIs "invalid" {optional[0].value}) }}}}'
            yield text
            yield f"{indent}{{{{- end }}}}"
            return
        yield text


# --- values -------------------------------------------------------------------------------------


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(by_alias=True, exclude_none=True)


def component_values(
    view: ComponentView, pins: dict[str, dict[str, str]], built: list[Manifest] | None = None
) -> dict[str, Any]:
    """The chart values of one component in one environment (or base), from its view
    (`built`: its objects in that environment, when the caller has them)."""
    c, o, kind_tunables = view.component, view.override, tunables(view.component.kind)
    image: dict[str, Any] = {"repository": c.image, "tag": view.spec.defaults.image_tag}
    pin = pins.get(c.image, {})
    if "newTag" in pin:
        image["tag"] = pin["newTag"]
    if "digest" in pin:
        image["digest"] = pin["digest"]
    out: dict[str, Any] = {"image": image}
    if "replicas" in kind_tunables:
        out["replicas"] = o.replicas if o.replicas is not None else c.replicas
    out["resources"] = resources(view)
    out["env"] = {**c.env, **(o.env or {}), **view.model_env}
    for knob in OPTIONAL_TUNABLES:
        if knob in kind_tunables:
            out[knob] = _dump(getattr(o, _field(ComponentOverride, knob)))
    if "suspend" in kind_tunables:
        out["suspend"] = bool(o.suspend)
    exceptions: dict[str, dict[str, str]] = {}
    for tool, check, reason in workload_exceptions(view, built):
        exceptions.setdefault(tool, {})[check] = reason
    out["policyExceptions"] = exceptions
    return out


def workload(view: ComponentView, built: list[Manifest] | None = None) -> Manifest:
    """The object that runs the component's container, as the builders make it in `view`
    (`built`: the component's objects, when the caller has built them for that view)."""
    if built is None:
        built = build_component(dataclasses.replace(view, is_base=False))
    kind = traits(view.component.kind).object_kind or view.component.kind
    (found,) = [m for m in built if m["kind"] == kind]
    return found


def workload_exceptions(
    view: ComponentView, built: list[Manifest] | None = None
) -> list[tuple[str, str, str]]:
    """Every policy exception on the component's workload: the spec's and the environment's
    (view.policy_exceptions) and those the builder derives (a Knative InferenceService
    waives the queue-proxy's liveness probe, say), read back from the built object, so one
    list feeds the chart's helper and the numbering of `checkov.io/skipN` stays the
    builder's."""
    annotations = workload(view, built)["metadata"].get("annotations", {})
    exceptions, _ = split_exception_annotations(annotations)
    return exceptions


def charted(view: ComponentView) -> bool:
    """The component has values: its workload is templated over them (a content-named one is
    fixed data per environment, see emit_helm)."""
    return not traits(view.component.kind).content_named


def chart_values(
    spec: PlatformSpec, environment: str | None, pipelines: Documents | None = None
) -> dict[str, Any]:
    """Every value of the chart in `environment` (None: the chart's defaults, i.e. base).

    An environment's workloads are read from build_platform (`pipelines` as the render's, so
    inside resolve.memoized they are the objects the overlays were made from, not a rebuild);
    base's are built as in an environment (`workload`)."""
    views = resolve(spec, environment)
    pins = image_pins(spec, environment) if environment is not None else {}
    log_level = views[0].log_level if views else spec.defaults.log_level
    groups = build_platform(spec, environment, pipelines) if environment is not None else {}
    return {
        "environment": environment,
        "logLevel": log_level,
        "components": {
            view.name: component_values(view, pins, groups.get(view.name))
            for view in views
            if charted(view)
        },
    }


def values_difference(base: Any, env: Any) -> Any:
    """What `env` changes about `base`, as a values file Helm merges over the defaults."""
    out = {}
    for key, value in env.items():
        old = base.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            sub = values_difference(old, value)
            if sub:
                out[key] = sub
        elif key not in base or old != value:
            out[key] = value
    return out


def _field(model: type[BaseModel], alias: str) -> str:
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return name
    raise KeyError(alias)


@functools.cache
def _classes(module: str) -> dict[str, ast.ClassDef]:
    """The top-level classes of a module's source, parsed once (`inspect.getsource` per class
    tokenizes the file again each time: about 3x the import time of this module)."""
    source = inspect.getsource(sys.modules[module])
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


def _docs(model: type[BaseModel]) -> dict[str, str]:
    """Field alias -> the field's docstring (the line under it in spec/model.py)."""
    body = _classes(model.__module__)[model.__name__].body
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            field = model.model_fields[node.target.id]
            docs[field.alias or node.target.id] = " ".join(after.value.value.split())
    return docs


KNOB_DOCS: dict[str, str] = {
    **{k: v for k, v in _docs(ComponentOverride).items()},
    "policyExceptions": "Policy checks (checkov, kube-linter, kube-score) waived on the"
    " component's workload, each with its reason: the component's, the environment's and those"
    " the builder derives from the spec (its annotations number them in sorted order).",
    "image": "Image of the component's container: repository, and a tag or a digest.",
    "resources": "Requests and limits of the component's container, as in the object "
    "(defaults <- component <- environment).",
    "env": "Environment variables of the component's container, besides LOG_LEVEL (and"
    " secretEnv, fixed in the template).",
    "repository": "Image repository without tag.",
    "tag": "Image tag (unused when a digest is set).",
    "digest": "Image digest, sha256:<64 hex>; preferred over the tag.",
    "logLevel": _docs(Defaults)["logLevel"],
    "environment": "The environment these values render (values-<env>.yaml sets it; null:"
    " none). It selects the environment's content-named objects (Jobs, PipelineVersions),"
    " which platformgen renders whole because their name is a hash of their content.",
    "components": "Per component (name = object name), what an environment may change.",
    "limits": _docs(Resources)["limits"],
    "requests": _docs(Resources)["requests"],
    **{RESOURCE_NAMES[alias]: doc for alias, doc in _docs(ResourceList).items()},
}


FLOW_KEYS = frozenset({"env", "policyExceptions"})
"""Values written on one line: their keys are data (variable names, check ids), not knobs."""


def values_yaml(values: dict[str, Any], spec: PlatformSpec) -> str:
    """values.yaml: the defaults (= base), one comment per key."""
    lines: list[str] = []
    flow: dict[tuple[str, str], str] = {}
    """(key, repr(value)) -> its line: most values repeat across components (`env: {}`), and
    PyYAML's pure-Python emitter is the cost; repr tells apart what YAML writes differently
    (1, True, '1', 1.0)."""

    def write(value: Any, indent: int) -> None:
        for key, item in value.items():
            if indent == 2:
                component = spec.components[key]
                doc = f"{key}: {component.kind}. {component.description}".strip()
            else:
                doc = KNOB_DOCS[key]
            lines.append(" " * indent + f"# {doc}")
            if isinstance(item, dict) and item and key not in FLOW_KEYS:
                lines.append(" " * indent + f"{_key(key)}:")
                write(item, indent + 2)
            else:
                memo = (key, repr(item))
                if memo not in flow:
                    dumped = yaml.safe_dump({key: item}, default_flow_style=True, width=10000)
                    flow[memo] = dumped.strip().removeprefix("{").removesuffix("}")
                lines.append(" " * indent + flow[memo])

    write(values, 0)
    return HEADER + "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return yaml.safe_dump(key).removesuffix("\n...\n").strip()


# --- schema -------------------------------------------------------------------------------------


VALIDATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "_percent": {"minimum": 0, "maximum": 100},
}
"""JSON Schema for the spec model's AfterValidators (pydantic cannot see into them), by name."""


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    schema.pop("title", None)
    for name, info in model.model_fields.items():
        for item in info.metadata:
            func = getattr(item, "func", None)
            extra = VALIDATOR_SCHEMAS.get(getattr(func, "__name__", ""), {})
            schema["properties"][info.alias or name].update(extra)
    stripped: dict[str, Any] = _strip_titles(schema)
    return stripped


def _strip_titles(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_titles(v) for k, v in value.items() if k != "title"}
    if isinstance(value, list):
        return [_strip_titles(v) for v in value]
    return value


def values_schema(spec: PlatformSpec) -> dict[str, Any]:
    """values.schema.json: JSON Schema draft-07 from the spec models, self-contained."""
    definitions: dict[str, Any] = {}
    for knob, model in KNOB_MODELS.items():
        definitions[model.__name__] = {"description": KNOB_DOCS[knob], **_model_schema(model)}
    quantity = {"type": "string", "pattern": QUANTITY.pattern}
    resource_list = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            RESOURCE_NAMES[alias]: {"description": doc, **quantity}
            for alias, doc in _docs(ResourceList).items()
        },
    }
    definitions["Resources"] = {
        "type": "object",
        "description": KNOB_DOCS["resources"],
        "additionalProperties": False,
        "required": ["limits", "requests"],
        "properties": {
            "limits": {"description": KNOB_DOCS["limits"], **resource_list},
            "requests": {"description": KNOB_DOCS["requests"], **resource_list},
        },
    }
    pin = _model_schema(ImagePin)["properties"]
    definitions["Image"] = {
        "type": "object",
        "description": KNOB_DOCS["image"],
        "additionalProperties": False,
        "required": ["repository", "tag"],
        "properties": {
            "repository": {
                "type": "string",
                "minLength": 1,
                "description": KNOB_DOCS["repository"],
            },
            "tag": {"type": "string", "minLength": 1, "description": KNOB_DOCS["tag"]},
            "digest": {
                "type": "string",
                "pattern": pin["digest"]["anyOf"][0]["pattern"],
                "description": KNOB_DOCS["digest"],
            },
        },
    }
    override = _model_schema(ComponentOverride)
    definitions["PolicyExceptions"] = {
        "description": KNOB_DOCS["policyExceptions"],
        **{k: v for k, v in override["properties"]["policyExceptions"].items() if k != "default"},
    }
    knob_schemas: dict[str, Any] = {
        "image": {"$ref": "#/definitions/Image"},
        "replicas": {
            "type": "integer",
            "minimum": 0,
            "description": KNOB_DOCS["replicas"],
        },
        "resources": {"$ref": "#/definitions/Resources"},
        "env": {
            "type": "object",
            "description": KNOB_DOCS["env"],
            "propertyNames": {"pattern": ENV_NAME.pattern},
            "additionalProperties": {"type": "string"},
        },
        "suspend": {"type": "boolean", "description": KNOB_DOCS["suspend"]},
        "policyExceptions": {"$ref": "#/definitions/PolicyExceptions"},
        **{
            knob: {"anyOf": [{"type": "null"}, {"$ref": f"#/definitions/{model.__name__}"}]}
            for knob, model in KNOB_MODELS.items()
        },
    }
    components: dict[str, Any] = {}
    for name, component in sorted(spec.components.items()):
        if traits(component.kind).content_named:
            continue
        keys = ["image", *sorted(tunables(component.kind))]
        components[name] = {
            "type": "object",
            "description": component.description or f"Component {name}.",
            "additionalProperties": False,
            "properties": {key: knob_schemas[key] for key in keys},
        }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "required": ["components", "logLevel"],
        "properties": {
            "environment": {
                "description": KNOB_DOCS["environment"],
                "enum": [None, *sorted(spec.environments)],
            },
            "logLevel": {
                "type": "string",
                "enum": list(_model_schema(Defaults)["properties"]["logLevel"]["enum"]),
                "description": KNOB_DOCS["logLevel"],
            },
            "components": {
                "type": "object",
                "description": KNOB_DOCS["components"],
                "additionalProperties": False,
                "properties": components,
            },
        },
        "definitions": dict(sorted(definitions.items())),
    }


# --- templates ----------------------------------------------------------------------------------


def _walk_dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk_dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_dicts(item)


def _label_knobs(m: Manifest, t: _Template, chart: str) -> None:
    labels = m["metadata"].setdefault("labels", {})
    if MANAGED_BY_LABEL in labels:
        labels[MANAGED_BY_LABEL] = t.scalar("$.Release.Service")
    labels[CHART_LABEL] = t.scalar(f'include "{chart}.chart" $')


Change = tuple[tuple[Any, ...], str]
"""(path, "added" | "removed") of a field an optional tunable adds or removes."""


def _changes(a: Any, b: Any, path: tuple[Any, ...], where: str) -> Iterator[Change]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in b.keys() - a.keys():
            yield (*path, key), "added"
        for key in a.keys() - b.keys():
            yield (*path, key), "removed"
        for key in a.keys() & b.keys():
            yield from _changes(a[key], b[key], (*path, key), where)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _changes(x, y, (*path, i), where)
    elif a != b:
        raise AssertionError(
            f"{where}: changes {'.'.join(map(str, path))} instead of adding or removing it;"
            " give the tunable a field path in kinds.py"
        )


def _without_env(m: Manifest, image: str) -> Manifest:
    """`m` without the env of the component's container, which the template renders from the
    `env` value whole (a tunable such as `model` or `canary` may change it)."""
    m = _copy(m)
    for d in _walk_dicts(m):
        if d.get("image") == image:
            d.pop("env", None)
    return m


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _sentinel_model(model: type[BaseModel], prefix: str, t: _Template) -> BaseModel:
    fields = {}
    for name, info in model.model_fields.items():
        value = f"{prefix}.{info.alias or name}"
        fields[name] = t.scalar(f"{value} | toJson", optional=info.default is None, value=value)
    return model.model_construct(None, **fields)


def component_templates(view: ComponentView, chart: str) -> dict[str, str]:
    """`templates/<component>-<kind>.yaml` for one component (view: its base view)."""
    kind_tunables = tunables(view.component.kind)
    kind_traits = traits(view.component.kind)
    values = f'index $.Values.components "{view.name}"'
    t = _Template()
    c = "$c"
    scalars: dict[str, Any] = {}
    if "replicas" in kind_tunables:
        scalars["replicas"] = t.scalar(f"{c}.replicas | toJson")
    plain = dataclasses.replace(
        view,
        is_base=False,
        environment_exceptions=(),
        override=ComponentOverride.model_construct(None, **scalars),
    )
    built_plain = build_component(plain)
    original = {identity(m): m for m in _templated(built_plain)}
    carriers = _exception_carriers(plain, built_plain)
    own = {(tool, check) for tool, check, _ in workload_exceptions(plain, built_plain)}
    objects = _copy(original)
    conditions: dict[tuple[str, str, str, str], str] = {}
    for knob in OPTIONAL_TUNABLES:
        if knob not in kind_tunables:
            continue
        field = _field(ComponentOverride, knob)
        model = KNOB_MODELS[knob]
        override = plain.override.model_copy(
            update={field: _sentinel_model(model, f"{c}.{knob}", t)}
        )
        built = {
            identity(m): m
            for m in _templated(build_component(dataclasses.replace(plain, override=override)))
        }
        for key, m in built.items():
            if key not in objects:
                objects[key] = m
                conditions[key] = f"{c}.{knob}"
                continue
            if key in conditions:
                continue
            where = f"{view.name}: {knob} in {m['kind']}"
            before, after = (_without_env(x, view.image) for x in (original[key], m))
            for path, change in sorted(_changes(before, after, (), where), key=str):
                parent = _get(objects[key], path[:-1])
                if change == "added":
                    parent[t.marked(path[-1], f"{c}.{knob}")] = _get(m, path)
                elif path[-1] in parent:
                    parent[t.marked(path[-1], f"not {c}.{knob}")] = parent.pop(path[-1])
                else:
                    raise AssertionError(f"{where}: {path} is removed by two tunables")
    files: dict[str, str] = {}
    stems = _stems(list(objects.values()), view.name)
    for (key, m), stem in zip(objects.items(), stems, strict=True):
        m = _copy(m)
        for knob, path in kind_traits.fields.items():
            if knob in kind_tunables and m["kind"] == view.component.kind:
                _get(m, path[:-1])[path[-1]] = t.scalar(f"{c}.{knob} | toJson")
        for d in _walk_dicts(m):
            if d.get("image") == view.image:
                d["image"] = t.scalar(f'include "{chart}.image" {c}.image')
                if "resources" in d:
                    d["resources"] = t.block(f"toYaml {c}.resources")
                if "env" in d:
                    args = f'"env" {c}.env "logLevel" $.Values.logLevel'
                    fixed = [e for e in d["env"] if e != _plain_env(e, plain.env)]
                    if fixed:
                        args += f' "fixed" (fromJsonArray {_go_string(_json(fixed))})'
                    d["env"] = t.block(f'include "{chart}.env" (dict {args})')
        if key in carriers:
            found, fixed_annotations = split_exception_annotations(
                m["metadata"].get("annotations", {})
            )
            extra: dict[str, dict[str, str]] = {}
            for tool, check, reason in found:
                if (tool, check) not in own:
                    extra.setdefault(tool, {})[check] = reason
            waived = f"{c}.policyExceptions"
            if extra:
                waived = (
                    f"(merge ({c}.policyExceptions | default dict | deepCopy)"
                    f" (fromJson {_go_string(_json(extra))}))"
                )
            exceptions = f'include "{chart}.policyExceptions" {waived}'
            if fixed_annotations:
                m["metadata"]["annotations"] = {**fixed_annotations, t.splice(exceptions): "splice"}
            else:
                m["metadata"]["annotations"] = t.block("", guard=exceptions)
        _label_knobs(m, t, chart)
        preamble = "{{- $c := " + values + " }}\n"
        files[f"templates/{stem}.yaml"] = t.text(m, preamble, conditions.get(key))
    return files


PROBE_EXCEPTION = ("checkov", "CKV_PLATFORMGEN_PROBE", "probe")
"""A waiver no spec declares: built into a view to find which objects carry its waivers."""


def _exception_carriers(
    view: ComponentView, built: list[Manifest]
) -> set[tuple[str, str, str, str]]:
    """Objects that carry the component's policy waivers (its workload, and e.g. a Trainer
    TrainingRuntime that holds the pod template): those a waiver added to the view reaches.
    `built`: build_component(view).
    Their annotations come from the `policyExceptions` helper; the waivers only the object
    has (not the workload) are fixed data merged under the values'."""
    probed = dataclasses.replace(
        view, environment_exceptions=(*view.environment_exceptions, PROBE_EXCEPTION)
    )
    before = {identity(m): m for m in built}
    return {
        identity(m)
        for m in build_component(probed)
        if identity(m) in before
        and m["metadata"].get("annotations") != before[identity(m)]["metadata"].get("annotations")
    }


def _templated(objects: list[Manifest]) -> list[Manifest]:
    """The objects templated over values: all but content-named ones (kinds.py)."""
    return [m for m in objects if not traits(m["kind"]).content_named]


def _plain_env(entry: dict[str, Any], env: dict[str, str]) -> dict[str, Any] | None:
    """`entry` as the helper renders it from the env values, or None if it does not."""
    name = entry["name"]
    return {"name": name, "value": env[name]} if name in env else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _go_string(text: str) -> str:
    """A Go template string literal of `text`: raw (backquoted) where it can be."""
    return f"`{text}`" if "`" not in text else json.dumps(text, ensure_ascii=False)


def environment_templates(
    spec: PlatformSpec, groups: dict[str, list[Manifest]], pipelines: Documents | None, chart: str
) -> dict[str, str]:
    """`templates/<group>-<kind>-<env>.yaml`: each environment's content-named objects (Jobs,
    PipelineVersions), whole, rendered only when `environment` names that environment.

    Their name is a hash of their content (naming.content_name), and their spec is immutable
    (a Job's pod template; KFP refuses changes to a PipelineVersion). A template over values
    would let `--set` change the content under an unchanged name, which the apiserver refuses
    (or which silently skips the re-run); so platformgen renders them, as it renders them into
    overlays/<env>/<group>/resources/, and a change goes through platform.yaml."""
    files: dict[str, str] = {}
    for environment in sorted(spec.environments):
        for group, objects in build_platform(spec, environment, pipelines).items():
            base = {identity(m) for m in groups.get(group, [])}
            named = [
                m for m in objects if traits(m["kind"]).content_named and identity(m) not in base
            ]
            condition = f'eq $.Values.environment "{environment}"'
            for m, stem in zip(named, _stems(named, group), strict=True):
                files[f"templates/{stem}-{environment}.yaml"] = static_template(m, chart, condition)
    return files


def _stems(objects: list[Manifest], group: str) -> list[str]:
    """`<group>-<kind>`, made unique with the object's namespace, then its name, where needed."""
    stems = [f"{group}-{kebab(m['kind'])}" for m in objects]
    for attempt in ("namespace", "name"):
        counts = {s: stems.count(s) for s in stems}
        stems = [
            f"{s}-{m['metadata'].get(attempt, m['metadata']['name'])}" if counts[s] > 1 else s
            for s, m in zip(stems, objects, strict=True)
        ]
    if len(set(stems)) != len(stems):
        raise AssertionError(f"template names collide in {group}: {stems}")
    return stems


def static_template(m: Manifest, chart: str, condition: str | None = None) -> str:
    t = _Template()
    m = _copy(m)
    _label_knobs(m, t, chart)
    return t.text(m, condition=condition)


# --- Go-template text: helpers and notes --------------------------------------------------------

HELPERS = """\
{{- /* Code generated by platformgen from platform.yaml. DO NOT EDIT. */ -}}

{{- /* @chart@.chart: the helm.sh/chart label value, <name>-<version>. */ -}}
{{- define "@chart@.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* @chart@.image: repository@digest when a digest is set, else repository:tag (kustomize
   `images:` does the same). */ -}}
{{- define "@chart@.image" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{- /* @chart@.env: the container's env list, sorted by name: LOG_LEVEL from the global log
   level, unless the component sets it, and the template's fixed entries (secretEnv: values
   from Secrets by name and key, not an environment knob). Argument: dict "env" <map>
   "logLevel" <level> and optionally "fixed" <list of env entries>. */ -}}
{{- define "@chart@.env" -}}
{{- $env := merge (dict) (.env | default dict) (dict "LOG_LEVEL" (upper .logLevel)) -}}
{{- $fixed := dict -}}
{{- range .fixed }}{{ $_ := set $fixed .name . }}{{ end -}}
{{- range $name := concat (keys $env) (keys $fixed) | uniq | sortAlpha }}
{{- if hasKey $fixed $name }}
- {{ index $fixed $name | toJson }}
{{- else }}
- name: {{ $name }}
  value: {{ index $env $name | toJson }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* @chart@.policyExceptions: the annotations that waive policy checks, each with
   its written reason (builders/pod.py exception_annotations).
   Argument: tool -> check -> reason. */ -}}
{{- define "@chart@.policyExceptions" -}}
{{- $checkov := get . "checkov" | default dict -}}
{{- range $i, $check := keys $checkov | sortAlpha }}
@checkov@{{ add1 $i }}: {{ printf "%s=%s" $check (index $checkov $check) | toJson }}
{{- end }}
{{- $linter := get . "kube-linter" | default dict -}}
{{- range $check := keys $linter | sortAlpha }}
@linter@{{ $check }}: {{ index $linter $check | toJson }}
{{- end }}
{{- $score := get . "kube-score" | default dict -}}
{{- if $score }}
@score@: {{ keys $score | sortAlpha | join "," | toJson }}
{{- range $check := keys $score | sortAlpha }}
@reason@{{ $check }}: {{ index $score $check | toJson }}
{{- end }}
{{- end }}
{{- end -}}
"""
"""_helpers.tpl, Go-template text as Helm reads it; `@name@` marks what helpers() fills in."""


def helpers(chart: str) -> str:
    fills = {
        "chart": chart,
        "checkov": CHECKOV_SKIP,
        "linter": KUBE_LINTER_IGNORE,
        "score": KUBE_SCORE_IGNORE,
        "reason": KUBE_SCORE_REASON,
    }
    return re.sub(r"@(\w+)@", lambda m: fills[m[1]], HELPERS)


def notes(spec: PlatformSpec, objects: list[Manifest]) -> str:
    """NOTES.txt: how to reach the model server(s) and where the metrics are."""
    lines = [
        "{{- /* Code generated by platformgen from platform.yaml. DO NOT EDIT. */ -}}",
        f"The {spec.platform.name} platform ({spec.platform.part_of}) is installed.",
        "Object names and namespaces are fixed by platform.yaml, whatever the release is called.",
        "",
    ]
    servers = [m for m in objects if m["kind"] == "InferenceService"]
    if servers:
        lines.append("Model server:")
    for m in servers:
        name, namespace = m["metadata"]["name"], m["metadata"]["namespace"]
        port = spec.components[name].ports[0].port
        lines += [
            f"  {name} (KServe InferenceService in {namespace}), its URL once Ready:",
            f"    kubectl get inferenceservice {name} -n {namespace} -o jsonpath='{{.status.url}}'",
            "  from your machine:",
            f"    kubectl port-forward -n {namespace} svc/{name}-predictor {port}:80",
            f"    curl http://127.0.0.1:{port}/v2/health/ready",
        ]
    monitors = [m for m in objects if m["kind"] == "ServiceMonitor"]
    if monitors:
        monitoring = spec.monitoring
        selector = ", ".join(f"{k}={v}" for k, v in sorted(monitoring.selector_labels.items()))
        lines += [
            "",
            f"Metrics: Prometheus in namespace {monitoring.prometheus_namespace} scrapes these"
            f" ServiceMonitors (selected by {selector}):",
        ]
    for m in monitors:
        namespace, name = m["metadata"]["namespace"], m["metadata"]["name"]
        for endpoint in m["spec"]["endpoints"]:
            lines.append(
                f"  {namespace}/{name}: port {endpoint['port']},"
                f" path {endpoint.get('path', '/metrics')},"
                f" every {endpoint.get('interval', '30s')}"
            )
    rules = [m for m in objects if m["kind"] == "PrometheusRule"]
    if rules:
        lines.append(
            "Alerts: PrometheusRules "
            + ", ".join(f"{m['metadata']['namespace']}/{m['metadata']['name']}" for m in rules)
        )
    return lines[0] + "\n" + _escape("\n".join(lines[1:]).rstrip("\n")) + "\n"


def chart_yaml(spec: PlatformSpec) -> dict[str, Any]:
    oldest = min(KUBERNETES_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))
    major, minor, _ = oldest.split(".")
    return {
        "apiVersion": "v2",
        "name": spec.platform.name,
        "description": f"The {spec.platform.name} ML platform ({spec.platform.part_of}),"
        " generated by platformgen from platform.yaml: the same objects as its kustomize"
        " overlays.",
        "type": "application",
        "version": __version__,
        "appVersion": spec.defaults.image_tag,
        "kubeVersion": f">={major}.{minor}.0-0",
    }


def emit_helm(spec: PlatformSpec, pipelines: Documents | None = None) -> dict[str, str]:
    """Every file of `charts/<platform.name>/`."""
    chart = spec.platform.name
    root = f"charts/{chart}"
    files: dict[str, str] = {f"{root}/Chart.yaml": to_yaml(chart_yaml(spec))}
    groups = build_platform(spec, None, pipelines)
    views = {view.name: view for view in resolve(spec, None)}
    for group, objects in groups.items():
        if group in views:
            for path, text in component_templates(views[group], chart).items():
                files[f"{root}/{path}"] = text
            continue
        for m, stem in zip(objects, _stems(objects, group), strict=True):
            files[f"{root}/templates/{stem}.yaml"] = static_template(m, chart)
    for path, text in environment_templates(spec, groups, pipelines, chart).items():
        files[f"{root}/{path}"] = text
    files[f"{root}/templates/_helpers.tpl"] = helpers(chart)
    files[f"{root}/templates/NOTES.txt"] = notes(
        spec, [m for objects in groups.values() for m in objects]
    )
    defaults = chart_values(spec, None, pipelines)
    files[f"{root}/values.yaml"] = values_yaml(defaults, spec)
    for environment in sorted(spec.environments):
        difference = values_difference(defaults, chart_values(spec, environment, pipelines))
        files[f"{root}/values-{environment}.yaml"] = to_yaml(difference)
    files[f"{root}/values.schema.json"] = to_json(values_schema(spec))
    return files
