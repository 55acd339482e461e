"""Provider variants of the sandbox (blueprint ``sandbox_variants``): the same authorization
server and API, shaped like the real providers whose quirks the catalog describes as data.

- Tenants (per-account subdomain / region apps, catalog ``account_fields``)::

      GET|POST /regions/<region>/tenants/<workspace>/oauth/authorize
      POST     /regions/<region>/tenants/<workspace>/oauth/token
      GET      /regions/<region>/tenants/<workspace>/api/me

  Only the tenants of ``SANDBOX_TENANTS`` exist (anything else is 404). A code is redeemed,
  a refresh token exchanged and an access token accepted only under the tenant it was issued
  under, so a portal that authorised at one tenant and exchanged or called at another fails.
  ``/api/me`` answers ``{id: "<workspace>:<user id>", user_id, username, name, email, region,
  workspace}`` and also takes a demo API key (``X-API-Key``).

- ``POST /nested/oauth/token``: Slack-style token response (``oauth.v2.access`` with user
  tokens): the real tokens under ``authed_user`` (scope comma-separated), a decoy top-level
  ``access_token`` that the API refuses, and ``instance_url`` (Salesforce-style) naming
  ``<issuer>/instances/eu1``, under which ``/instances/eu1/api/me`` and
  ``/instances/eu1/api/contacts`` answer like ``/api/…``.

- ``POST /forever/oauth/token``: a token that does not expire (GitHub OAuth apps, Notion): no
  ``expires_in`` and no ``refresh_token`` in the response; the token lives ten years (or until
  ``/_sandbox/expire-access-tokens``).

- ``/quirks/…``: a provider with several quirks at once (catalog app ``sandbox-quirks``):

  * the consent redirect carries the company the user authorised, ``companyId=<QUIRKS_COMPANY>``
    (QuickBooks' ``realmId``);
  * ``POST /quirks/oauth/token`` refuses ``grant_type=refresh_token`` and ``POST
    /quirks/oauth/refresh`` takes nothing else (Figma, Adobe Acrobat Sign);
  * ``GET /quirks/me`` and ``GET /quirks/companies/<company>/api/{me,contacts}`` take the
    access token only in ``X-Sandbox-Access-Token`` (Shopify; ``Authorization`` is refused)
    and need ``X-Sandbox-Client: <the token's client id>`` (Etsy's ``x-api-key``);
  * ``/quirks/me`` answers ``{…profile, region: QUIRKS_REGION}`` (Mailchimp's ``dc``, Xero's
    tenant) and the company API needs ``X-Sandbox-Region: <region>`` (Xero's
    ``xero-tenant-id``) and the authorised company in its path.

Client credentials (RFC 6749 §4.4) need no variant: machine-to-machine clients use
``/oauth/token`` with ``grant_type=client_credentials`` (see :mod:`portal.sandbox.server`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import select, update

from . import api, views
from .auth import api_key_user, bearer_error, credentials_error
from .db import db_session
from .models import Token, User, digest
from .resources import contact_json, get_user, list_contacts, profile_json
from .server import current_tenant, set_tenant
from .state import sandbox_state

bp = Blueprint("sandbox_variants", __name__)

#: Instances of the Salesforce-style ``instance_url`` (``/instances/<name>/api``).
INSTANCES = ("eu1",)
#: Lifetime of a "non-expiring" token, in seconds (ten years).
FOREVER_SECONDS = 10 * 365 * 24 * 3600
#: The top-level ``access_token`` of a nested token response: never a valid token.
DECOY_TOKEN = "xoxb-decoy-this-is-not-the-user-token"
#: The company id the ``/quirks`` consent redirect reports (``companyId``).
QUIRKS_COMPANY = "4620816365"
#: The region ``/quirks/me`` reports and the company API requires in ``X-Sandbox-Region``.
QUIRKS_REGION = "eu1"
#: The header carrying the access token on ``/quirks`` API calls.
QUIRKS_TOKEN_HEADER = "X-Sandbox-Access-Token"


def _enter_tenant(region: str, workspace: str) -> None:
    tenants: dict[str, list[str]] = current_app.config["SANDBOX_TENANTS"]
    if workspace not in tenants.get(region, []):
        abort(404, description=f"There is no workspace {workspace!r} in region {region!r}.")
    set_tenant(f"{region}/{workspace}")


@bp.get("/regions/<region>/tenants/<workspace>/oauth/authorize")
def tenant_authorize(region: str, workspace: str) -> Response:
    """The consent page, under one tenant."""
    _enter_tenant(region, workspace)
    return views.authorize()


@bp.post("/regions/<region>/tenants/<workspace>/oauth/authorize")
def tenant_authorize_decision(region: str, workspace: str) -> Response:
    """The consent decision, under one tenant: the code is bound to it."""
    _enter_tenant(region, workspace)
    return views.authorize_decision()


@bp.post("/regions/<region>/tenants/<workspace>/oauth/token")
def tenant_token(region: str, workspace: str) -> Response:
    """The token endpoint, under one tenant: only that tenant's codes and refresh tokens."""
    _enter_tenant(region, workspace)
    return views.issue_token()


@bp.get("/regions/<region>/tenants/<workspace>/api/me")
def tenant_me(region: str, workspace: str) -> Response:
    """The caller's user in this workspace (bearer token of this tenant, or a demo API key)."""
    _enter_tenant(region, workspace)
    user: User | None
    if "X-API-Key" in request.headers and "Authorization" not in request.headers:
        user = api_key_user()
        if user is None:
            return credentials_error("api_key")
    else:
        try:
            token = sandbox_state().protector.acquire_token(None)
        except OAuth2Error as error:
            return bearer_error(error, None)
        if token.tenant != current_tenant():
            return bearer_error(OAuth2Error(error="invalid_token"), None)
        user = get_user(db_session(), token.user_id)
    assert user is not None
    profile = profile_json(user)
    return jsonify(
        {
            **profile,
            "id": f"{workspace}:{profile['id']}",
            "user_id": profile["id"],
            "region": region,
            "workspace": workspace,
        }
    )


def _instance(name: str) -> None:
    if name not in INSTANCES:
        abort(404, description=f"There is no instance {name!r}.")


@bp.get("/instances/<name>/api/me")
def instance_me(name: str) -> Response:
    """``/api/me`` on an instance host (Salesforce-style ``instance_url``)."""
    _instance(name)
    return api.me()


@bp.get("/instances/<name>/api/contacts")
def instance_contacts(name: str) -> Response:
    """``/api/contacts`` on an instance host."""
    _instance(name)
    return api.contacts()


def _token_body(response: Response) -> dict[str, Any] | None:
    if response.status_code != 200 or response.mimetype != "application/json":
        return None
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return None
    return body if isinstance(body, dict) and "access_token" in body else None


def _json(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/nested/oauth/token")
def nested_token() -> Response:
    """The token endpoint, answering in Slack's ``oauth.v2.access`` shape (see module docs)."""
    response = views.issue_token()
    body = _token_body(response)
    if body is None:
        return response
    issuer = current_app.config["SANDBOX_ISSUER"]
    user: dict[str, Any] = {
        "id": "U0SANDBOX",
        "access_token": body["access_token"],
        "token_type": "user",
        "scope": ",".join(str(body.get("scope", "")).split()),
        "expires_in": body.get("expires_in"),
    }
    if body.get("refresh_token"):
        user["refresh_token"] = body["refresh_token"]
    return _json(
        {
            "ok": True,
            "app_id": "A0SANDBOX",
            "access_token": DECOY_TOKEN,
            "token_type": "bot",
            "scope": "decoy:bot",
            "authed_user": user,
            "instance_url": f"{issuer}/instances/{INSTANCES[0]}",
        }
    )


@bp.post("/forever/oauth/token")
def forever_token() -> Response:
    """The token endpoint, issuing a token that does not expire (see module docs)."""
    response = views.issue_token()
    body = _token_body(response)
    if body is None:
        return response
    session = db_session()
    session.execute(
        update(Token)
        .where(Token.access_token_hash == digest(body["access_token"]))
        .values(expires_at=time.time() + FOREVER_SECONDS)
    )
    session.commit()
    body.pop("expires_in", None)
    body.pop("refresh_token", None)
    return _json(body)


# --------------------------------------------------------------------------- /quirks


@bp.get("/quirks/oauth/authorize")
def quirks_authorize() -> Response:
    """The consent page."""
    return views.authorize()


@bp.post("/quirks/oauth/authorize")
def quirks_authorize_decision() -> Response:
    """The consent decision; an "allow" redirect also carries ``companyId``."""
    response = views.authorize_decision()
    location = response.headers.get("Location", "")
    if response.status_code == 302 and "code=" in location:
        response.headers["Location"] = f"{location}&companyId={QUIRKS_COMPANY}"
    return response


def _grant_refused(grant_type: str) -> Response:
    response = _json(
        {
            "error": "unsupported_grant_type",
            "error_description": f"This endpoint does not take grant_type={grant_type}.",
        }
    )
    response.status_code = 400
    return response


@bp.post("/quirks/oauth/token")
def quirks_token() -> Response:
    """The token endpoint, without refresh (that is ``/quirks/oauth/refresh``)."""
    if request.form.get("grant_type") == "refresh_token":
        return _grant_refused("refresh_token")
    return views.issue_token()


@bp.post("/quirks/oauth/refresh")
def quirks_refresh() -> Response:
    """The separate refresh endpoint: ``grant_type=refresh_token`` only."""
    grant_type = request.form.get("grant_type") or ""
    if grant_type != "refresh_token":
        return _grant_refused(grant_type)
    return views.issue_token()


def _quirks_user() -> tuple[User | None, Response | None]:
    """The user of the ``X-Sandbox-Access-Token`` token, checked with ``X-Sandbox-Client``."""
    value = request.headers.get(QUIRKS_TOKEN_HEADER, "")
    if "Authorization" in request.headers or not value:
        return None, bearer_error(OAuth2Error(error="invalid_request"), None)
    session = db_session()
    token = session.scalars(select(Token).where(Token.access_token_hash == digest(value))).first()
    if token is None or token.is_expired() or token.is_revoked():
        return None, bearer_error(OAuth2Error(error="invalid_token"), None)
    if request.headers.get("X-Sandbox-Client") != token.client_id:
        return None, api.api_error(
            401, "invalid_client_header", "X-Sandbox-Client must name the token's client."
        )
    return get_user(session, token.user_id), None


@bp.get("/quirks/me")
def quirks_me() -> Response:
    """The caller's profile and region (see module docs)."""
    user, error = _quirks_user()
    if error is not None:
        return error
    assert user is not None
    return jsonify({**profile_json(user), "region": QUIRKS_REGION})


def _quirks_company(company: str) -> tuple[User | None, Response | None]:
    user, error = _quirks_user()
    if error is not None:
        return None, error
    if company != QUIRKS_COMPANY:
        return None, api.api_error(404, "not_found", f"There is no company {company!r}.")
    if request.headers.get("X-Sandbox-Region") != QUIRKS_REGION:
        return None, api.api_error(
            400, "wrong_region", f"X-Sandbox-Region must be {QUIRKS_REGION!r}."
        )
    return user, None


@bp.get("/quirks/companies/<company>/api/me")
def quirks_company_me(company: str) -> Response:
    """The caller's profile, under the authorised company."""
    user, error = _quirks_company(company)
    if error is not None:
        return error
    assert user is not None
    return jsonify({**profile_json(user), "company": company})


@bp.get("/quirks/companies/<company>/api/contacts")
def quirks_company_contacts(company: str) -> Response:
    """The caller's contacts (first page), under the authorised company."""
    user, error = _quirks_company(company)
    if error is not None:
        return error
    assert user is not None
    page = list_contacts(db_session(), user, limit=10)
    return jsonify({"data": [contact_json(c) for c in page.contacts], "company": company})
