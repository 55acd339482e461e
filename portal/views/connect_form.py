"""The connect form of an app (Flask-WTF): its account fields, then its credential fields.

API-key, client-credentials (RFC 6749 §4.4) and Basic (RFC 7617) apps enter their credentials
here; OAuth 2.0 apps with ``account_fields`` use it as the step before the redirect to the
provider. Values are validated by :func:`portal.catalog.validate_field_value`.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, SelectField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from ..catalog import AccountField, App, BasicSettings, InvalidAccountField, validate_field_value


def credential_fields(app: App) -> dict[str, Any]:
    """The credential fields of ``app``'s connect form, labelled from the catalog: an API
    key; a client id and secret (RFC 6749 §4.4); a Basic (RFC 7617) username and password; none
    for OAuth 2.0 apps (their form is the account-field step before the redirect)."""
    if app.api_key is not None:
        return {
            "api_key": PasswordField(
                app.api_key.key_label,
                validators=[DataRequired(), Length(max=4096)],
                description=app.api_key.key_help or "",
            )
        }
    if app.client_credentials is not None:
        cc = app.client_credentials
        return {
            "client_id": StringField(
                cc.client_id_label, validators=[DataRequired(), Length(max=512)]
            ),
            "client_secret": PasswordField(
                cc.client_secret_label,
                validators=[DataRequired(), Length(max=4096)],
                description=cc.key_help or "",
            ),
        }
    if app.oauth2 is not None:
        return {}
    labels = app.basic or BasicSettings()
    return {
        "username": StringField(
            labels.username_label, validators=[DataRequired(), Length(max=512)]
        ),
        "password": PasswordField(
            labels.password_label, validators=[DataRequired(), Length(max=4096)]
        ),
    }


#: Prefix of the form field carrying account field ``name`` (``account_subdomain``).
ACCOUNT_FIELD_PREFIX = "account_"


class ValidAccountField:
    """WTForms validator running :func:`validate_field_value`; stores the normalised value."""

    def __init__(self, spec: AccountField) -> None:
        self.spec = spec

    def __call__(self, form: FlaskForm, field: Field) -> None:
        try:
            field.data = validate_field_value(self.spec, field.data)
        except InvalidAccountField as exc:
            raise ValidationError(exc.message) from None


def choices(pairs: list[tuple[str, str]]) -> list[Any]:
    """``SelectField`` choices: ``SelectChoice`` objects on WTForms 3.3+ (tuples are
    deprecated there), ``(value, label)`` tuples before."""
    try:
        from wtforms.fields.choices import SelectChoice
    except ImportError:  # WTForms < 3.3
        return list(pairs)
    return [SelectChoice(value, label) for value, label in pairs]


def asked_fields(app: App) -> list[AccountField]:
    """The account fields the end user enters (not those the provider fills: token response,
    authorization response query, identity response)."""
    derived = app.derived_fields
    return [f for f in app.account_fields if f.name not in derived]


def form_for(app: App) -> FlaskForm:
    """The connect form of ``app``: its account fields first, then its credential fields
    (none for OAuth apps, whose form is the account-field step before the redirect)."""
    attrs: dict[str, Any] = {}
    for spec in asked_fields(app):
        if spec.format == "enum":
            attrs[ACCOUNT_FIELD_PREFIX + spec.name] = SelectField(
                spec.label,
                choices=choices([("", "Choose…"), *((v, v) for v in spec.enum)]),
                validators=[ValidAccountField(spec)],
                description=spec.help or "",
                validate_choice=False,
            )
        else:
            attrs[ACCOUNT_FIELD_PREFIX + spec.name] = StringField(
                spec.label,
                validators=[ValidAccountField(spec)],
                description=spec.help or "",
                render_kw={
                    "autocomplete": "off",
                    "autocapitalize": "none",
                    "spellcheck": "false",
                    "maxlength": "253",
                },
            )
    # Account fields first (where the account is), then the credentials for it.
    attrs.update(credential_fields(app))
    form: FlaskForm = type("ConnectForm", (FlaskForm,), attrs)()
    for spec in asked_fields(app):
        bound = form[ACCOUNT_FIELD_PREFIX + spec.name]
        bound.portal_prefix = spec.prefix or ""
        bound.portal_suffix = spec.suffix or ""
    return form


def form_fields(app: App, form: FlaskForm) -> dict[str, str]:
    """The validated account field values of a submitted, valid ``form``."""
    return {spec.name: form[ACCOUNT_FIELD_PREFIX + spec.name].data for spec in asked_fields(app)}
