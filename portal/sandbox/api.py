"""The sandbox's tiny REST API (blueprint ``sandbox_api``, prefix ``/api``), and the identity
endpoints of the API-key and Basic demo apps (blueprint ``sandbox_identity``).

The API takes a bearer token (scopes enforced), or instead a demo API key (``X-API-Key``) or
HTTP Basic demo credentials, which carry every scope (see :mod:`portal.sandbox.auth`).

- ``GET  /api/me``                 any valid token -> ``{id, username, name, email}``
- ``GET  /api/contacts``           ``contacts.read``; ``?limit=1..100`` (default 10, larger
  values clamped) ``&cursor=<next_cursor>`` -> ``{"data": [Contact], "next_cursor": str | null}``
- ``POST /api/contacts``           ``contacts.write``; ``{name, email}`` -> 201 Contact
- ``GET  /api/contacts/<id>``      ``contacts.read`` -> Contact (another user's id -> 404)

- ``GET  /apikey/me``              ``X-API-Key: sk_demo_ada`` -> ``{id, username, name, email}``
- ``GET  /basic/me``               HTTP Basic ``ada:lovelace`` -> ``{id, username, name, email}``

Contact = ``{id: str, name, email, created_at: ISO-8601 UTC "Z"}``. Errors are JSON
``{"error", "message"}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .auth import api_key_user, basic_user, credentials_error, current_user, require_token
from .db import db_session
from .resources import (
    DEFAULT_PAGE_SIZE,
    InvalidCursor,
    contact_json,
    create_contact,
    delete_contact,
    get_contact,
    list_contacts,
    profile_json,
)

bp = Blueprint("sandbox_api", __name__, url_prefix="/api")
identity_bp = Blueprint("sandbox_identity", __name__)

_MAX_NAME = 200
_MAX_EMAIL = 320


def api_error(status: int, error: str, message: str) -> Response:
    """``{"error": error, "message": message}`` with ``status``."""
    response = jsonify({"error": error, "message": message})
    response.status_code = status
    return response


@bp.get("/me")
@require_token(allow_credentials=True)
def me() -> Response:
    """The caller's user: ``{id, username, name, email}``."""
    return jsonify(profile_json(current_user()))


@bp.get("/contacts")
@require_token("contacts.read", allow_credentials=True)
def contacts() -> Response:
    """One page of the user's contacts (keyset pagination, oldest first)."""
    raw_limit = request.args.get("limit")
    limit = DEFAULT_PAGE_SIZE
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            return api_error(400, "invalid_request", "limit must be an integer from 1 to 100.")
        if limit < 1:
            return api_error(400, "invalid_request", "limit must be an integer from 1 to 100.")
    try:
        page = list_contacts(
            db_session(), current_user(), limit=limit, cursor=request.args.get("cursor") or None
        )
    except InvalidCursor as exc:
        return api_error(400, "invalid_cursor", str(exc))
    return jsonify(
        {"data": [contact_json(c) for c in page.contacts], "next_cursor": page.next_cursor}
    )


def _clean_field(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= limit else None


@bp.post("/contacts")
@require_token("contacts.write", allow_credentials=True)
def add_contact() -> Response:
    """Create a contact from ``{name, email}``: 201 with the contact, 400 on bad input."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "invalid_request", "Send a JSON object {name, email}.")
    name = _clean_field(body, "name", _MAX_NAME)
    email = _clean_field(body, "email", _MAX_EMAIL)
    if name is None:
        return api_error(400, "invalid_request", f"name must be 1 to {_MAX_NAME} characters.")
    if email is None or "@" not in email:
        return api_error(400, "invalid_request", "email must be an email address.")
    contact = create_contact(db_session(), current_user(), name, email)
    response = jsonify(contact_json(contact))
    response.status_code = 201
    return response


@bp.get("/contacts/<int:contact_id>")
@require_token("contacts.read", allow_credentials=True)
def contact(contact_id: int) -> Response:
    """One of the user's contacts; 404 for unknown ids and other users' contacts alike."""
    found = get_contact(db_session(), current_user(), contact_id)
    if found is None:
        return api_error(404, "not_found", "No such contact.")
    return jsonify(contact_json(found))


@bp.delete("/contacts/<int:contact_id>")
@require_token("contacts.delete", allow_credentials=True)
def remove_contact(contact_id: int) -> Response:
    """Delete one of the user's contacts (scope ``contacts.delete``): 204; 404 for unknown ids
    and other users' contacts alike."""
    if not delete_contact(db_session(), current_user(), contact_id):
        return api_error(404, "not_found", "No such contact.")
    return Response(status=204)


@identity_bp.get("/apikey/me")
def api_key_identity() -> Response:
    """The user of the ``X-API-Key`` demo key; 401 ``invalid_credentials`` otherwise."""
    user = api_key_user()
    if user is None:
        return credentials_error("api_key")
    return jsonify(profile_json(user))


@identity_bp.get("/basic/me")
def basic_identity() -> Response:
    """The user of the HTTP Basic demo credentials (RFC 7617); 401 ``invalid_credentials``
    with a ``Basic`` challenge otherwise."""
    user = basic_user()
    if user is None:
        return credentials_error("basic")
    return jsonify(profile_json(user))
