"""The environment's values against the new chart's ``values.schema.json``, as Helm checks them
before it renders anything: with ``jsonschema``, under the draft the schema declares (``$schema``)
and Draft 7 when it declares none (Helm's validator, santhosh-tekuri/jsonschema, defaults to it).

Each error is (key path, what is wrong) in words built from the schema only (the rule and its
limit), never from the value: an environment's values may be private (``show_values: channels``).

Helm validates the values it merged: the chart's defaults, then the environment's. The same is
done here, so a required key the defaults provide is not reported.
"""
from __future__ import annotations

import jsonschema
from jsonschema import exceptions, validators
from referencing.exceptions import Unresolvable

from .keys import shown_path

MAX_ERRORS = 50


def merged(defaults: dict, overrides: dict) -> dict:
    """Helm's coalescing: maps merged key by key, anything else replaced whole; ``null`` deletes."""
    out = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def schema_errors(schema, values: dict, defaults: dict = None) -> tuple:
    """((key path, problem), ...) sorted by path, and a problem with the schema itself ("" if none)."""
    if schema is None:
        return (), ""
    cls = validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as e:
        return (), f"The new chart's values.schema.json is not a valid JSON Schema ({e.message[:120]})."
    validator = cls(schema)
    instance = merged(defaults or {}, values) if defaults is not None else values
    found = []
    try:
        for error in validator.iter_errors(instance):
            found.append((shown_path(tuple(error.absolute_path)) or "(top level)", describe(error)))
            if len(found) >= MAX_ERRORS:
                break
    except Unresolvable as e:  # a remote $ref: never fetched
        return (), f"The new chart's values.schema.json refers to what Ferry cannot resolve ({str(e)[:120]})."
    return tuple(sorted(set(found))), ""


def describe(error: exceptions.ValidationError) -> str:
    rule, limit = error.validator, error.validator_value
    if rule == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        return f"must be of type {' or '.join(map(str, kinds))}"
    if rule == "required":
        missing = [k for k in limit if isinstance(error.instance, dict) and k not in error.instance]
        return f"requires {', '.join(f'`{k}`' for k in missing) or 'keys it lacks'}"
    if rule == "additionalProperties" and limit is False:
        extra = sorted(k for k in (error.instance or {}) if k not in (error.schema.get("properties") or {}))
        return f"does not allow {', '.join(f'`{k}`' for k in extra[:5]) or 'other keys'}"
    if rule == "enum":
        return f"must be one of {', '.join(map(str, limit[:10]))}"
    if rule == "const":
        return f"must be {limit}"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                "minItems", "maxItems", "multipleOf", "pattern", "format"):
        return f"fails `{rule}: {str(limit)[:60]}`"
    return f"fails the schema's `{rule}` rule"
