"""Test and fault-injection hooks (blueprint ``sandbox_hooks``, prefix ``/_sandbox``).

They exist because this is a sandbox: tests of the portal count what reached the provider and
make it misbehave. No authentication; disable with ``SANDBOX_TEST_HOOKS = False``.

- ``GET  /_sandbox/stats``  -> ``{"token_requests": {"authorization_code": n,
  "refresh_token": n}, "revocations": n, "userinfo_requests": n, "api_requests": n}``
  (requests that reached each endpoint, successful or not, faults included; ``api_requests``
  counts every request under ``/api/``, ``/apikey/`` and ``/basic/``)
- ``POST /_sandbox/faults`` ``{"token_endpoint": null | "500" | "timeout" | "delay" | "html" |
  "malformed_json", "timeout_seconds": float}`` -> 200 the faults now set. Every following
  token-endpoint request misbehaves until set back to ``null``: ``"500"`` HTTP 500 plain text;
  ``"timeout"`` sleeps ``timeout_seconds`` (default 30) then answers normally; ``"delay"`` sleeps
  as long, then answers normally only if the client is still connected, else drops the request
  unprocessed (see :data:`~portal.sandbox.monitor.TOKEN_FAULTS`); ``"html"`` 200
  ``text/html``; ``"malformed_json"`` 200 ``application/json`` that does not parse.
  The same body may carry (or carry instead) ``"pkce": "required" | "optional"`` (optional:
  a confidential client may send no code_challenge, as most real providers allow; a challenge
  that is sent is still enforced) and ``"id_token": null | "wrong_nonce"`` (the OpenID Connect
  ``id_token`` carries a nonce other than the one sent), and ``"api": null | "500" |
  "reject_credentials"`` (the resource API answers 500, or refuses demo API keys and Basic
  credentials with 401; see :data:`~portal.sandbox.monitor.API_FAULTS`). ``GET
  /_sandbox/faults`` shows the faults set.
- ``POST /_sandbox/reset``  clears faults and counters -> ``{"ok": true}``
- ``POST /_sandbox/expire-access-tokens`` marks every access token expired (refresh tokens keep
  working) -> ``{"expired": n}``
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .api import api_error
from .db import db_session
from .server import expire_access_tokens
from .state import sandbox_state

bp = Blueprint("sandbox_hooks", __name__, url_prefix="/_sandbox")


@bp.get("/stats")
def stats() -> Response:
    """The request counters."""
    return jsonify(sandbox_state().monitor.stats())


@bp.get("/faults")
def faults() -> Response:
    """``{"token_endpoint": mode | null, "timeout_seconds": float | null}``."""
    return jsonify(sandbox_state().monitor.faults())


@bp.post("/faults")
def set_faults() -> Response:
    """Set (or clear, with ``null``) the token-endpoint fault, the PKCE policy and the
    ``id_token`` fault; keys left out keep their value."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not {"token_endpoint", "pkce", "id_token", "api"} & set(body):
        return api_error(
            400,
            "invalid_request",
            'Send {"token_endpoint": null | mode}, {"pkce": policy} or {"id_token": null | mode}.',
        )
    seconds = body.get("timeout_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        return api_error(400, "invalid_request", "timeout_seconds must be a number.")
    monitor = sandbox_state().monitor
    try:
        if "pkce" in body:
            monitor.set_pkce(body["pkce"])
        if "id_token" in body:
            monitor.set_id_token_fault(body["id_token"])
        if "api" in body:
            monitor.set_api_fault(body["api"])
        if "token_endpoint" in body:
            monitor.set_token_fault(body["token_endpoint"], seconds)
    except ValueError as exc:
        return api_error(400, "invalid_request", str(exc))
    return jsonify(monitor.faults())


@bp.post("/reset")
def reset() -> Response:
    """Clear faults and counters."""
    sandbox_state().monitor.reset()
    return jsonify({"ok": True})


@bp.post("/expire-access-tokens")
def expire() -> Response:
    """Expire every access token now."""
    return jsonify({"expired": expire_access_tokens(db_session())})
