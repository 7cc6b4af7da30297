"""values.schema.json: JSON Schema draft-07 of the chart's values, from the spec models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from platformgen.build.chart import KNOB_MODELS
from platformgen.emit.helm.values import KNOB_DOCS, RESOURCE_NAMES, field_docs
from platformgen.kinds import traits, tunables
from platformgen.spec.model import (
    ENV_NAME,
    QUANTITY,
    ComponentOverride,
    Defaults,
    ImagePin,
    PlatformSpec,
    ResourceList,
)

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
    stripped: dict[str, Any] = _strip_docs(schema)
    return stripped


def _strip_docs(value: Any) -> Any:
    """The schema without titles, nor the field descriptions pydantic copies from the model
    (the chart documents its own values: KNOB_DOCS)."""
    if isinstance(value, dict):
        return {
            k: (
                {name: _strip_field(field) for name, field in v.items()}
                if k == "properties"
                else _strip_docs(v)
            )
            for k, v in value.items()
            if k != "title"
        }
    if isinstance(value, list):
        return [_strip_docs(v) for v in value]
    return value


def _strip_field(field: Any) -> Any:
    stripped = _strip_docs(field)
    if isinstance(stripped, dict):
        stripped.pop("description", None)
    return stripped


def _closed_object(
    description: str, properties: dict[str, Any], required: list[str] | None = None
) -> dict[str, Any]:
    """An object schema with exactly `properties` (`required`: all of them, unless given)."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": sorted(properties) if required is None else required,
        "properties": properties,
    }


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
            for alias, doc in field_docs(ResourceList).items()
        },
    }
    definitions["Resources"] = _closed_object(
        KNOB_DOCS["resources"],
        {
            "limits": {"description": KNOB_DOCS["limits"], **resource_list},
            "requests": {"description": KNOB_DOCS["requests"], **resource_list},
        },
    )
    pin = _model_schema(ImagePin)["properties"]
    definitions["Image"] = _closed_object(
        KNOB_DOCS["image"],
        {
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
        required=["repository", "tag"],
    )
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
