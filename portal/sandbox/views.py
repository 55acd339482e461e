"""OAuth endpoints and metadata of the sandbox (blueprint ``sandbox``).

- ``GET  /oauth/authorize``   consent page (RFC 6749 §4.1.1); errors before the redirect URI is
  validated render a page, later ones redirect with ``error`` and ``iss`` (§4.1.2.1, RFC 9207)
- ``POST /oauth/authorize``   the consent decision: 302 with ``code``, ``state``, ``iss``
- ``POST /oauth/token``       authorization_code (+PKCE) and refresh_token grants (RFC 6749 §5)
- ``POST /oauth/revoke``      RFC 7009
- ``GET  /oauth/userinfo``    bearer; ``{sub, name, email, preferred_username}``
- ``GET  /oauth/jwks``        the RS256 key of OpenID Connect ``id_token``s (RFC 7517)
- ``GET  /.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration``:
  RFC 8414 metadata
"""

from __future__ import annotations

import hmac
import re
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    session,
)

from .auth import current_user, require_token
from .config import SCOPE_DESCRIPTIONS, TOKEN_ENDPOINT_AUTH_METHODS
from .db import db_session
from .resources import get_user, list_users, user_json
from .server import Issuer
from .state import sandbox_state

bp = Blueprint("sandbox", __name__)

_CSRF_KEY = "sandbox_csrf"
#: Content-Security-Policy of every HTML page; the consent page adds its client's redirect
#: origin to ``form-action`` because Chromium applies ``form-action`` to the redirect that
#: follows a form submission.
BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csp_with_form_action(*origins: str) -> str:
    """:data:`BASE_CSP` with extra ``form-action`` sources."""
    extra = "".join(f" {o}" for o in origins if o)
    return BASE_CSP.replace("form-action 'self'", f"form-action 'self'{extra}")


_CSP_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)


def _origin(uri: str) -> str:
    # The URI was already matched against the client's registered ones; still, only a plain
    # scheme://host[:port] may enter the CSP header.
    parts = urlsplit(uri)
    origin = f"{parts.scheme}://{parts.hostname and parts.netloc.rpartition('@')[2]}"
    return origin if _CSP_ORIGIN.match(origin) else ""


def csrf_token() -> str:
    """This browser session's consent-form token (created on first use)."""
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return token


def csrf_valid(submitted: str | None) -> bool:
    """Whether ``submitted`` is this session's consent-form token (constant time)."""
    expected = session.get(_CSRF_KEY)
    if not isinstance(expected, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def error_page(status: int, error: str, description: str) -> Response:
    """The HTML error page: ``error`` code and human ``description``, both escaped."""
    response = make_response(
        render_template(
            "portal/sandbox/error.html", status=status, error=error, description=description
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _authorize_error(error: OAuth2Error) -> Response:
    # RFC 6749 §4.1.2.1: only once the client and its redirect URI are known good may the error
    # travel back to the client; before that, tell the user and never redirect.
    if getattr(error, "redirect_uri", None):
        response: Response = sandbox_state().server.handle_error_response(None, error)
        return Issuer().add_to(response)
    description = error.description or "The authorization request is not valid."
    return error_page(400, error.error or "invalid_request", description)


@bp.get("/oauth/authorize")
def authorize() -> Response:
    """Validate the authorization request (Authlib) and render the consent page."""
    server = sandbox_state().server
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return _authorize_error(error)
    client = grant.client
    scopes = (grant.request.scope or "").split()
    users = list_users(db_session())
    response = make_response(
        render_template(
            "portal/sandbox/consent.html",
            client=client,
            scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in scopes],
            users=users,
            csrf_token=csrf_token(),
            action=request.full_path,
            redirect_host=urlsplit(grant.redirect_uri).netloc,
        )
    )
    response.headers["Content-Security-Policy"] = csp_with_form_action(_origin(grant.redirect_uri))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/oauth/authorize")
def authorize_decision() -> Response:
    """Allow (302 with ``code``, ``state``, ``iss``) or Deny (302 with
    ``error=access_denied``, ``state``, ``iss``)."""
    if not csrf_valid(request.form.get("csrf_token")):
        return error_page(
            400, "invalid_request", "The consent form expired or did not come from this page."
        )
    server = sandbox_state().server
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return _authorize_error(error)
    decision = request.form.get("decision")
    if decision == "allow":
        try:
            user = get_user(db_session(), int(request.form.get("user", "")))
        except ValueError:
            user = None
        if user is None:
            return error_page(400, "invalid_request", "Choose one of the demo users.")
    elif decision == "deny":
        user = None
    else:
        return error_page(400, "invalid_request", "Choose Allow or Deny.")
    response: Response = server.create_authorization_response(grant=grant, grant_user=user)
    return response


def _fault_response(mode: str) -> Response | None:
    if mode == "500":
        return Response("Internal Server Error (sandbox fault)", 500, mimetype="text/plain")
    if mode == "html":
        html = "<!doctype html><title>Oops</title><h1>Something went wrong</h1>"
        return Response(html, 200, mimetype="text/html")
    if mode == "malformed_json":
        body = '{"access_token": "sandbox-fault", "token_type": '
        return Response(body, 200, mimetype="application/json")
    return None


def _client_gone() -> bool:
    """Whether the client of this request hung up (werkzeug's server exposes the socket; other
    servers: assume it is still there). The body was already read, so a readable socket with
    no data left means the peer closed (EOF) or reset it."""
    sock: socket.socket | None = request.environ.get("werkzeug.socket")
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@bp.post("/oauth/token")
def issue_token() -> Response:
    """Token endpoint (RFC 6749 §3.2, §4.1.3, §6): JSON ``{access_token, token_type: "Bearer",
    expires_in, refresh_token, scope}`` or an RFC 6749 §5.2 error. Plays the configured fault
    first, if any (see :mod:`portal.sandbox.hooks`)."""
    state = sandbox_state()
    state.monitor.count_token_request(request.form.get("grant_type"))
    fault = state.monitor.token_fault
    if fault is not None:
        if fault.mode in ("timeout", "delay"):
            time.sleep(fault.timeout_seconds)
            if fault.mode == "delay" and _client_gone():
                return Response("", 499, mimetype="text/plain")  # nobody reads it
        else:
            faulty = _fault_response(fault.mode)
            if faulty is not None:
                return faulty
    response: Response = state.server.create_token_response()
    return response


@bp.post("/oauth/revoke")
def revoke_token() -> Response:
    """RFC 7009: 200 ``{}`` for a revoked or unknown token; 400/401 only for a bad request or
    client authentication."""
    state = sandbox_state()
    state.monitor.count_revocation()
    response: Response = state.server.create_endpoint_response("revocation")
    return response


@bp.get("/oauth/userinfo")
@require_token()
def userinfo() -> Response:
    """``{sub, name, email, preferred_username}`` of the token's user (any valid token)."""
    return jsonify(user_json(current_user()))


@bp.before_app_request
def _count_userinfo() -> None:
    # Counted before authentication so failed calls count too: the stat is "requests that
    # reached the provider".
    if request.endpoint == "sandbox.userinfo":
        sandbox_state().monitor.count_userinfo()


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 §2 authorization server metadata, with RFC 9207 §3
    ``authorization_response_iss_parameter_supported``."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(SCOPE_DESCRIPTIONS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "authorization_response_iss_parameter_supported": True,
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "name", "email", "preferred_username"],
    }


@bp.get("/oauth/jwks")
def jwks() -> Response:
    """The public key that verifies ``id_token``s (RFC 7517 JWK Set)."""
    key = sandbox_state().id_token_key
    response = jsonify({"keys": [key.as_dict(private=False)]})
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/.well-known/oauth-authorization-server")
@bp.get("/.well-known/openid-configuration")
def server_metadata() -> Response:
    """The :func:`metadata` document for ``SANDBOX_ISSUER``."""
    response = jsonify(metadata(current_app.config["SANDBOX_ISSUER"]))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response
