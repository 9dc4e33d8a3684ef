"""Parameter schemas of model templates and the values checked against them, free of HTTP and of the database.

A schema is SGP's `{"parameters": [{name, type, description, required}]}` (type `str`, `int`, `float` or `bool`), or
a JSON Schema (Draft 2020-12) of an object for richer rules. Values are checked the way SGP's pydantic-v1 models
did: required names present, undeclared names refused, and values of the declared type, with strings such as `"5"`
read as the number they spell; every such coercion is reported. Errors are `{loc, msg, type}` items, one per
offending parameter, so a caller can list them all at once.

The launch configuration's `${name}` placeholders live here too: `${name}` names a creation parameter, `$${` is a
literal `${`, and anything else starting with `${` is an error."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, ValidationError

from modelyard.kit.schemas import Schema

Loc = list[str | int]
ErrorItem = dict[str, Any]

PARAM_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_PARAM_NAME = re.compile(PARAM_NAME)
SGP_TO_JSON = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_INT = re.compile(r"^[+-]?\d{1,100}$")
_NUMBER = re.compile(r"^[+-]?(\d{1,100}(\.\d{0,100})?|\.\d{1,100})([eE][+-]?\d{1,4})?$")
_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}
_MSG_LIMIT = 300
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


class SgpParameter(Schema):
    name: str = Field(
        pattern=PARAM_NAME,
        description="A letter or '_', then letters, digits or '_' (it becomes an environment variable)",
    )
    type: Literal["str", "int", "float", "bool"]
    description: str = Field(max_length=1000)
    required: bool


class SgpParameterSchema(Schema):
    parameters: list[SgpParameter] = Field(max_length=256)


@dataclass(frozen=True)
class ParameterSpec:
    """A parsed parameter schema: what was declared, and the JSON Schema that checks the rest."""

    document: dict[str, Any] = field(default_factory=dict)
    json_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    names: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    # name -> JSON type ("string", "integer", "number", "boolean") for the parameters whose type is one plain type.
    types: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    # Whether undeclared names are refused (always for SGP's format; for a JSON Schema unless it says otherwise).
    closed: bool = True
    sgp: bool = True


NO_PARAMETERS = ParameterSpec()


def _error(loc: Loc, msg: str, type_: str) -> ErrorItem:
    if len(msg) > _MSG_LIMIT:
        msg = msg[: _MSG_LIMIT - 3] + "..."
    return {"loc": loc, "msg": msg, "type": type_}


# -- parsing schemas -------------------------------------------------------------------------------------------------


def parse_schema(raw: dict[str, Any] | None, loc: Loc) -> tuple[ParameterSpec, list[ErrorItem]]:
    """The spec of a schema as sent in a template, or the errors that make it unusable (then NO_PARAMETERS)."""
    if raw is None:
        return NO_PARAMETERS, []
    if "parameters" in raw:
        return _parse_sgp(raw, loc)
    return _parse_json_schema(raw, loc)


def load_schema(document: dict[str, Any] | None) -> ParameterSpec:
    """The spec of a schema stored with a template (checked when the template was created)."""
    spec, errors = parse_schema(document, [])
    if errors:
        raise ValueError(f"stored parameter schema is invalid: {errors}")
    return spec


def _parse_sgp(raw: dict[str, Any], loc: Loc) -> tuple[ParameterSpec, list[ErrorItem]]:
    try:
        parsed = SgpParameterSchema.model_validate(raw)
    except ValidationError as exc:
        return NO_PARAMETERS, [_error([*loc, *e["loc"]], e["msg"], e["type"]) for e in exc.errors()]
    errors: list[ErrorItem] = []
    seen: set[str] = set()
    for i, param in enumerate(parsed.parameters):
        if param.name in seen:
            errors.append(
                _error([*loc, "parameters", i, "name"], f"Duplicate parameter name '{param.name}'", "duplicate_name")
            )
        seen.add(param.name)
    if errors:
        return NO_PARAMETERS, errors
    params = parsed.parameters
    json_schema = {
        "type": "object",
        "properties": {p.name: {"type": SGP_TO_JSON[p.type], "description": p.description} for p in params},
        "required": [p.name for p in params if p.required],
        "additionalProperties": False,
    }
    spec = ParameterSpec(
        document=parsed.model_dump(mode="json"),
        json_schema=json_schema,
        names=tuple(p.name for p in params),
        required=tuple(p.name for p in params if p.required),
        types={p.name: SGP_TO_JSON[p.type] for p in params},
        closed=True,
        sgp=True,
    )
    return spec, []


def _refs(value: Any, path: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                yield [*path, key], item
            else:
                yield from _refs(item, [*path, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _refs(item, [*path, i])


def _parse_json_schema(raw: dict[str, Any], loc: Loc) -> tuple[ParameterSpec, list[ErrorItem]]:
    from jsonschema import Draft202012Validator  # only templates with a JSON Schema need it: 55 ms off each start

    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    errors = [_error([*loc, *e.absolute_path], e.message, "json_schema") for e in meta.iter_errors(raw)]
    if errors:
        return NO_PARAMETERS, errors
    dialect = raw.get("$schema")
    if dialect is not None and dialect.rstrip("#") != JSON_SCHEMA_DIALECT:
        errors.append(
            _error(
                [*loc, "$schema"],
                f"Only JSON Schema Draft 2020-12 is supported ('{JSON_SCHEMA_DIALECT}')",
                "json_schema",
            )
        )
    if raw.get("type") != "object":
        errors.append(
            _error(
                [*loc, "type"],
                'A parameter schema describes an object of named parameters: give "type": "object" '
                '(or use SGP\'s {"parameters": [...]} format)',
                "json_schema",
            )
        )
    properties = raw.get("properties", {})
    for name in properties:
        if not _PARAM_NAME.match(name):
            errors.append(
                _error(
                    [*loc, "properties", name],
                    "A parameter name is a letter or '_', then letters, digits or '_' (at most 128)",
                    "parameter_name",
                )
            )
    for path, ref in _refs(raw, list(loc)):
        if not ref.startswith("#"):
            errors.append(_error(path, "Only references inside the schema ('#/...') are allowed", "json_schema"))
    if errors:
        return NO_PARAMETERS, errors
    closed = "additionalProperties" not in raw or raw["additionalProperties"] is False
    closed = closed and "patternProperties" not in raw and "unevaluatedProperties" not in raw
    json_schema = dict(raw)
    if closed:
        json_schema["additionalProperties"] = False
    types: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    for name, sub in properties.items():
        if isinstance(sub, dict):
            if sub.get("type") in ("string", "integer", "number", "boolean"):
                types[name] = sub["type"]
            if "default" in sub:
                defaults[name] = sub["default"]
    spec = ParameterSpec(
        document=raw,
        json_schema=json_schema,
        names=tuple(properties),
        required=tuple(raw.get("required", [])),
        types=types,
        defaults=defaults,
        closed=closed,
        sgp=False,
    )
    return spec, []


# -- checking values -------------------------------------------------------------------------------------------------

_TYPE_ERRORS = {
    "string": ("Input should be a valid string", "string_type"),
    "integer": ("Input should be a valid integer", "int_type"),
    "number": ("Input should be a valid number", "float_type"),
    "boolean": ("Input should be a valid boolean", "bool_type"),
}


def _coerce(value: Any, json_type: str, sgp: bool) -> tuple[Any, tuple[str, str] | None]:
    """(value read as `json_type`, None) or (value, (msg, type)) when it cannot be. `bool` is never a number."""
    if json_type == "string":
        if isinstance(value, str):
            return value, None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return str(value), None
    elif json_type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        if isinstance(value, float) and math.isfinite(value):
            if value.is_integer():
                return int(value), None
            return value, ("Input should be a valid integer, got a number with a fractional part", "int_from_float")
        if isinstance(value, str):
            if _INT.match(value.strip()):
                return int(value.strip()), None
            return value, ("Input should be a valid integer, unable to parse string as an integer", "int_parsing")
    elif json_type == "number":
        if isinstance(value, int) and not isinstance(value, bool):
            # SGP's `float` answers a float; JSON Schema's `number` already holds an integer.
            return (float(value) if sgp and abs(value) < 2**63 else value), None
        if isinstance(value, float) and math.isfinite(value):
            return value, None
        if isinstance(value, str):
            text = value.strip()
            if _INT.match(text) and not sgp:
                return int(text), None
            if _NUMBER.match(text) and math.isfinite(float(text)):
                return float(text), None
            return value, ("Input should be a valid number, unable to parse string as a number", "float_parsing")
    elif json_type == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE, None
            return value, ("Input should be a valid boolean, unable to interpret input", "bool_parsing")
    return value, _TYPE_ERRORS[json_type]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


@dataclass
class CheckedValues:
    values: dict[str, Any]
    coercions: list[dict[str, Any]]
    errors: list[ErrorItem]


def check_values(spec: ParameterSpec, values: dict[str, Any], loc: Loc) -> CheckedValues:
    """Check parameter values against a spec: every problem is one error item whose loc ends in the parameter's
    name; values read as another type are reported in `coercions` ({loc, input, value, type})."""
    errors: list[ErrorItem] = []
    coercions: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    declared = ", ".join(spec.names) or "none"
    for name in spec.required:
        if values.get(name) is None:
            errors.append(_error([*loc, name], "Field required", "missing"))
    for name, value in values.items():
        if spec.closed and name not in spec.names:
            errors.append(
                _error(
                    [*loc, name], f"Extra inputs are not permitted: the template declares {declared}", "extra_forbidden"
                )
            )
            continue
        if value is None:
            continue  # An optional parameter given as null is left out (a required one was reported above).
        json_type = spec.types.get(name)
        if json_type is None:
            out[name] = value
            continue
        new, problem = _coerce(value, json_type, spec.sgp)
        if problem is not None:
            errors.append(_error([*loc, name], problem[0], problem[1]))
            continue
        if _json_kind(new) != _json_kind(value) or (isinstance(value, float) and isinstance(new, int)):
            sgp_type = next((k for k, v in SGP_TO_JSON.items() if v == json_type), json_type)
            coercions.append(
                {"loc": [*loc, name], "input": value, "value": new, "type": sgp_type if spec.sgp else json_type}
            )
        out[name] = new
    for name, default in spec.defaults.items():
        out.setdefault(name, default)
    if not spec.sgp:
        reported = {e["loc"][len(loc)] for e in errors}
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(spec.json_schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        for e in sorted(validator.iter_errors(out), key=lambda e: [str(p) for p in e.absolute_path]):
            path = list(e.absolute_path)
            if (not path and e.validator == "required") or (path and path[0] in reported):
                continue  # Already reported, by name.
            errors.append(_error([*loc, *path], e.message, f"json_schema_{e.validator}"))
    return CheckedValues(out, coercions, errors)


def request_parameters_schema(spec: ParameterSpec) -> dict[str, Any]:
    """The JSON Schema of `model_request_parameters` on the wire: `{"bindings": {...}}`. A JSON Schema of the
    template keeps its own `$id`, so its `#/...` references still resolve inside it once embedded."""
    bindings = spec.json_schema if spec.sgp else {"$id": "urn:modelyard:model-request-parameters", **spec.json_schema}
    return {
        "type": "object",
        "properties": {"bindings": bindings},
        "required": ["bindings"],
        "additionalProperties": False,
    }


# -- placeholders ----------------------------------------------------------------------------------------------------

PLACEHOLDER_FIELDS = ("command", "streaming_command", "env")


def _bundle_strings(bundle: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    for key in ("command", "streaming_command"):
        for i, text in enumerate(bundle.get(key) or []):
            yield [key, i], text
    for name, text in (bundle.get("env") or {}).items():
        yield ["env", name], text


def check_placeholders(bundle: dict[str, Any], spec: ParameterSpec, loc: Loc) -> list[ErrorItem]:
    """Every `${name}` in the bundle's command, streaming_command and env values must name a declared creation
    parameter."""
    errors: list[ErrorItem] = []
    declared = set(spec.names)
    listing = ", ".join(spec.names) or "none"
    for path, text in _bundle_strings(bundle):
        for match in _PLACEHOLDER.finditer(text):
            found = match.group(0)
            if found == "$${":
                continue
            name = match.group(1)
            if name is None:
                errors.append(
                    _error(
                        [*loc, *path], "Unclosed '${': write ${name}, or $${ for a literal '${'", "invalid_placeholder"
                    )
                )
            elif not _PARAM_NAME.match(name):
                errors.append(
                    _error(
                        [*loc, *path],
                        f"Invalid placeholder '{found}': write ${{name}} with a parameter name, "
                        "or $${ for a literal '${'",
                        "invalid_placeholder",
                    )
                )
            elif name not in declared:
                errors.append(
                    _error(
                        [*loc, *path],
                        f"Unknown placeholder '{found}': declare '{name}' in model_creation_parameters_schema "
                        f"(declared: {listing}), or write $${{ for a literal '${{'",
                        "unknown_placeholder",
                    )
                )
    return errors


def as_text(value: Any) -> str:
    """A parameter value as it appears in a command or an environment variable."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def render(text: str, values: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        return as_text(values.get(match.group(1) or ""))

    return _PLACEHOLDER.sub(replace, text)


def render_bundle(bundle: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The bundle with placeholders replaced and every parameter exported as an environment variable; the
    template's own env entries win over an exported parameter of the same name."""
    out = dict(bundle)
    for key in ("command", "streaming_command"):
        if bundle.get(key) is not None:
            out[key] = [render(text, values) for text in bundle[key]]
    env = {name: as_text(value) for name, value in values.items() if value is not None}
    env.update({name: render(text, values) for name, text in (bundle.get("env") or {}).items()})
    out["env"] = env
    return out
