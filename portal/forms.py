"""HTML forms for a function's params (``showFunction``), derived from its JSON Schema.

This module only *derives*: which control each top-level property of the params schema gets
(:func:`fields_for`), how the submitted strings become typed JSON values (:func:`coerce`), how
values are shown again (:func:`values_from_params`, :func:`values_from_form`) and how the
validator's findings read next to a field (:func:`field_errors`). Whether params are valid is
decided by jsonschema alone, through :func:`portal.functions.validate_params`.

Controls per property (``type`` lists such as ``["string", "null"]`` count as their one
non-null type):

=========================  ==========================================================
schema                     control
=========================  ==========================================================
``enum`` / ``const``       ``<select>``; option values are the JSON text of each value
``boolean``                checkbox (unchecked means ``false``) when required or with a
                           ``default``; otherwise a Yes / No / unset ``<select>``, so an
                           optional flag can stay out of the params
``integer`` / ``number``   ``<input type=number>`` with ``min``/``max``/``step``
``string``                 ``<input>``: ``type=email``/``url``/``date`` by ``format``;
                           a ``<textarea>`` when ``maxLength`` exceeds 500
several scalar types       ``<input>`` read as JSON when it parses (``7``, ``true``), else
                           as text
anything else              ``<textarea>`` holding JSON (arrays, objects, untyped); text
                           that is not JSON is passed on as a string
=========================  ==========================================================
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .i18n import gettext, lazy_gettext, ngettext

Kind = Literal["string", "integer", "number", "boolean", "enum", "json"]

#: Longest ``?params=`` value accepted (base64url characters).
MAX_ENCODED_PARAMS = 48 * 1024
#: ``maxLength`` above which a string gets a ``<textarea>``.
MULTILINE_OVER = 500
#: Params keys the form never shows (the pagination cursor belongs to the caller).
HIDDEN_PARAMS = frozenset({"next_page"})

_STRING_WIDGETS = {"email": "email", "uri": "url", "url": "url", "date": "date"}
_INTEGER = re.compile(r"[+-]?\d+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_OMIT = object()
_TYPE_NAMES = {
    "array": lazy_gettext("a JSON array"),
    "object": lazy_gettext("a JSON object"),
    "string": lazy_gettext("text"),
    "integer": lazy_gettext("a whole number"),
    "number": lazy_gettext("a number"),
    "boolean": lazy_gettext("true or false"),
}


@dataclass(frozen=True)
class Option:
    """One ``<option>``: ``value`` is the JSON text of the enum value, ``label`` its text."""

    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    """One form control derived from a top-level property of the params schema.

    ``widget`` is the control: ``text``, ``email``, ``url``, ``date``, ``number``,
    ``checkbox``, ``select`` or ``textarea``. ``types`` lists the JSON types the schema allows
    (from ``type`` or the branches of ``anyOf``/``oneOf``; empty when any).
    """

    name: str
    id: str
    label: str
    kind: Kind
    widget: str
    required: bool = False
    has_default: bool = False
    default: Any = None
    description: str = ""
    options: tuple[Option, ...] = ()
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    step: str | None = None
    format: str = ""
    types: tuple[str, ...] = ()
    schema: Mapping[str, Any] | None = None

    @property
    def hint(self) -> str:
        """What to type into a JSON ``<textarea>`` (``""`` for other controls)."""
        if self.kind != "json" or self.widget != "textarea":
            return ""
        concrete = [t for t in self.types if t != "null"]
        if concrete == ["array"]:
            return gettext("A JSON array.")
        if concrete == ["object"]:
            return gettext("A JSON object.")
        return gettext("Text, or JSON.") if "string" in concrete else gettext("JSON.")

    @property
    def help_id(self) -> str:
        return f"{self.id}-help"

    @property
    def errors_id(self) -> str:
        return f"{self.id}-errors"


def humanize(name: str) -> str:
    """``"first_name"`` -> ``"First name"``; ``"sendAt"`` -> ``"Send at"``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    words = " ".join(words.split()).lower()
    return words[:1].upper() + words[1:] if words else name


def _types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The JSON types ``schema`` allows, in order; ``()`` when it does not say."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, list):
        return tuple(t for t in declared if isinstance(t, str))
    found: list[str] = []
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if not isinstance(branches, list):
            continue
        for branch in branches:
            branch_types = _types(branch) if isinstance(branch, Mapping) else ()
            if not branch_types:
                return ()
            found.extend(t for t in branch_types if t not in found)
    return tuple(found)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _option_label(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _field_id(name: str, taken: set[str]) -> str:
    base = "portal-param-" + (re.sub(r"[^A-Za-z0-9_-]", "-", name) or "x")
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def fields_for(schema: Mapping[str, Any]) -> list[FormField]:
    """The form's fields: one per top-level property of ``schema``, in schema order.

    ``label`` is the property's ``title``, else its humanised name; ``description`` becomes the
    help text; ``required`` comes from the object's ``required`` list.
    """
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = set(schema.get("required") or [])
    taken: set[str] = set()
    fields = []
    for name, prop in properties.items():
        if name in HIDDEN_PARAMS:
            continue
        prop = prop if isinstance(prop, Mapping) else {}
        types = _types(prop)
        concrete = [t for t in types if t != "null"]
        json_type = concrete[0] if len(concrete) == 1 else ""
        common: dict[str, Any] = {
            "name": name,
            "id": _field_id(name, taken),
            "label": str(prop.get("title") or humanize(name)),
            "required": name in required,
            "has_default": "default" in prop,
            "default": prop.get("default"),
            "description": str(prop.get("description") or ""),
            "format": str(prop.get("format") or ""),
            "types": types,
            "schema": prop,
        }
        choices = prop.get("enum")
        if choices is None and "const" in prop:
            choices = [prop["const"]]
        if isinstance(choices, list) and choices:
            options = tuple(
                Option(json.dumps(v, sort_keys=True), _option_label(v)) for v in choices
            )
            fields.append(FormField(kind="enum", widget="select", options=options, **common))
        elif json_type == "boolean":
            if common["required"] or common["has_default"]:
                fields.append(FormField(kind="boolean", widget="checkbox", **common))
            else:
                yes_no = (Option("true", "Yes"), Option("false", "No"))
                fields.append(FormField(kind="enum", widget="select", options=yes_no, **common))
        elif json_type in ("integer", "number"):
            fields.append(
                FormField(
                    kind=json_type,  # type: ignore[arg-type]
                    widget="number",
                    minimum=_number(prop.get("minimum")),
                    maximum=_number(prop.get("maximum")),
                    step="1" if json_type == "integer" else "any",
                    **common,
                )
            )
        elif json_type == "string":
            max_length = _count(prop.get("maxLength"))
            widget = _STRING_WIDGETS.get(common["format"], "text")
            if widget == "text" and max_length is not None and max_length > MULTILINE_OVER:
                widget = "textarea"
            fields.append(
                FormField(
                    kind="string",
                    widget=widget,
                    min_length=_count(prop.get("minLength")),
                    max_length=max_length,
                    **common,
                )
            )
        else:
            scalar = bool(concrete) and not {"array", "object"} & set(concrete)
            fields.append(FormField(kind="json", widget="text" if scalar else "textarea", **common))
    return fields


# --------------------------------------------------------------------------- submitted values


def _coerce_one(field: FormField, raw: str | None) -> Any:
    if field.kind == "boolean":
        return raw is not None and raw.strip().lower() not in ("", "false", "0", "off", "no")
    if raw is None or raw == "":
        return _OMIT
    text = raw.strip()
    if field.kind == "integer":
        return int(text) if _INTEGER.fullmatch(text) else raw
    if field.kind == "number":
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            value = float(text)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    if field.kind == "enum":
        for option in field.options:
            if option.value == text:
                return json.loads(option.value)
        return raw
    if field.kind == "json":
        if not text:
            return _OMIT
        try:
            return json.loads(text)
        except ValueError:
            return raw  # plain text: valid where the schema allows a string
    return raw


def coerce(fields: Iterable[FormField], form: Mapping[str, str]) -> dict[str, Any]:
    """Typed params from submitted form strings (``request.form`` or any mapping).

    Empty inputs are left out (so a missing required value is reported as missing); an
    unchecked checkbox is ``False``; a value that cannot be read as its type (``"abc"`` for an
    integer, broken JSON) is passed on as the string it is, for the validator to reject.
    """
    params: dict[str, Any] = {}
    for field in fields:
        value = _coerce_one(field, form.get(field.name))
        if value is not _OMIT:
            params[field.name] = value
    return params


# --------------------------------------------------------------------------- shown values


def _shown(field: FormField, value: Any) -> str | bool:
    if field.kind == "boolean":
        return value is True
    if value is None:
        return ""
    if field.kind == "enum":
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        return value
    if field.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def values_from_params(fields: Iterable[FormField], params: Mapping[str, Any]) -> dict[str, Any]:
    """What each control shows for typed ``params`` (pre-fill), falling back to defaults.

    Text controls get a string (JSON text for arrays and objects), checkboxes a ``bool``,
    selects the JSON text of the chosen option.
    """
    shown: dict[str, Any] = {}
    for field in fields:
        if field.name in params:
            shown[field.name] = _shown(field, params[field.name])
        elif field.has_default:
            shown[field.name] = _shown(field, field.default)
        else:
            shown[field.name] = False if field.kind == "boolean" else ""
    return shown


def values_from_form(fields: Iterable[FormField], form: Mapping[str, str]) -> dict[str, Any]:
    """What each control shows again after a rejected submit: exactly what was typed."""
    shown: dict[str, Any] = {}
    for field in fields:
        raw = form.get(field.name)
        if field.kind == "boolean":
            shown[field.name] = _coerce_one(field, raw)
        else:
            shown[field.name] = raw if raw is not None else ""
    return shown


# --------------------------------------------------------------------------- error messages


def _wording(field: FormField, keyword: str, expected: Any) -> str | None:
    if keyword in ("pattern", "format") and field.format == "email":
        return gettext("Enter a valid e-mail address.")
    if keyword in ("pattern", "format") and field.format in ("uri", "url"):
        return gettext("Enter a valid URL.")
    if keyword == "type":
        if field.kind == "integer":
            return gettext("Enter a whole number.")
        if field.kind == "number":
            return gettext("Enter a number.")
        if field.kind == "json":
            names = [str(_TYPE_NAMES.get(t, t)) for t in field.types if t != "null"]
            return (
                gettext("Enter %(types)s.", types=gettext(" or ").join(names))
                if names
                else gettext("Enter valid JSON.")
            )
        return None
    if keyword in ("pattern", "format"):
        return gettext("Enter a value in the expected format.")
    if keyword in ("enum", "const"):
        return gettext("Choose one of the options.")
    n = expected if isinstance(expected, int) else 0
    messages = {
        "minLength": lambda: ngettext(
            "Enter at least %(num)d character.", "Enter at least %(num)d characters.", n
        ),
        "maxLength": lambda: ngettext(
            "Enter at most %(num)d character.", "Enter at most %(num)d characters.", n
        ),
        "minimum": lambda: gettext("Enter %(value)s or more.", value=expected),
        "maximum": lambda: gettext("Enter %(value)s or less.", value=expected),
        "exclusiveMinimum": lambda: gettext(
            "Enter a number greater than %(value)s.", value=expected
        ),
        "exclusiveMaximum": lambda: gettext("Enter a number less than %(value)s.", value=expected),
        "multipleOf": lambda: gettext("Enter a multiple of %(value)s.", value=expected),
        "minItems": lambda: ngettext(
            "Add at least %(num)d item.", "Add at least %(num)d items.", n
        ),
        "maxItems": lambda: ngettext("Add at most %(num)d item.", "Add at most %(num)d items.", n),
    }
    make = messages.get(keyword)
    return make() if make else None


def _friendly(field: FormField, value: Any, message: str) -> str:
    """Say what jsonschema found in words for a form; keep jsonschema's message otherwise."""
    if field.schema is None:
        return message
    try:
        found = [
            e
            for e in Draft202012Validator(dict(field.schema)).iter_errors(value)
            if not e.absolute_path
        ]
    except (SchemaError, LookupError, TypeError, ValueError):  # e.g. an unresolvable $ref
        return message
    for error in found:
        if error.message == message:
            return _wording(field, str(error.validator), error.validator_value) or message
    return message


def field_errors(
    fields: Sequence[FormField], params: Mapping[str, Any], details: Iterable[Mapping[str, str]]
) -> tuple[dict[str, list[str]], list[str]]:
    """Sort ``validate_params`` details by form field: ``({name: [message…]}, [form-level…])``.

    A detail about ``tags.0`` belongs to the ``tags`` control (prefixed with ``0: ``); a detail
    with no field, or about a property the form has no control for, is form-level.
    """
    by_name = {f.name: f for f in fields}
    per_field: dict[str, list[str]] = {}
    general: list[str] = []
    for detail in details:
        path = str(detail.get("field") or "")
        message = str(detail.get("message") or "Invalid value.")
        top, _, rest = path.partition(".")
        field = by_name.get(top)
        if field is None:
            general.append(f"{path}: {message}" if path else message)
        elif field.name not in params:
            per_field.setdefault(top, []).append(gettext("This field is required."))
        elif rest:
            per_field.setdefault(top, []).append(f"{rest}: {message}")
        else:
            per_field.setdefault(top, []).append(_friendly(field, params[top], message))
    return per_field, general


# --------------------------------------------------------------------------- ?params=


def encode_params(params: Mapping[str, Any]) -> str:
    """``params`` as unpadded base64url of its JSON (what ``showFunction`` puts in ``?params=``)."""
    raw = json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_params(encoded: str | None) -> dict[str, Any] | None:
    """The object in ``?params=`` (base64url of JSON, padding optional).

    :returns: ``{}`` when absent or empty, the object when readable, ``None`` when malformed
        (not base64url, not UTF-8 JSON, not an object, or longer than
        :data:`MAX_ENCODED_PARAMS`).
    """
    if not encoded:
        return {}
    if len(encoded) > MAX_ENCODED_PARAMS or not _BASE64URL.fullmatch(encoded):
        return None
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None
