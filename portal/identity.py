"""Credential placement on outgoing requests, and the identity lookup after connect.

The identity lookup learns which external account was just connected: one GET to the app's
``identity.url`` with the new credentials, reading ``external_id`` and ``label`` from the JSON
by dotted path (catalog ``identity`` block).
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from .catalog import App, dotted
from .errors import ProviderError


def request_kwargs(app: App, credentials: dict[str, Any]) -> dict[str, Any]:
    """``requests`` keyword arguments (``headers``, ``params``, ``auth``) carrying ``credentials``
    the way the app's catalog entry says.

    OAuth 2.0 and bearer API keys use ``Authorization: Bearer`` (RFC 6750 §2.1); basic uses
    RFC 7617; header/query API keys use the configured name.
    """
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    kind = credentials.get("type")
    if kind == "oauth2":
        headers["Authorization"] = f"Bearer {credentials['access_token']}"
    elif kind == "api_key" and app.api_key is not None:
        key = credentials["api_key"]
        if app.api_key.placement_in == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif app.api_key.placement_in == "header":
            headers[app.api_key.placement_name or "X-API-Key"] = key
        else:
            params[app.api_key.placement_name or "api_key"] = key
    elif kind == "basic":
        auth = (credentials["username"], credentials["password"])
    return {"headers": headers, "params": params, "auth": auth}


def fetch_identity(app: App, credentials: dict[str, Any], timeout: float) -> tuple[str, str]:
    """``(external_id, label)`` of the account the credentials belong to.

    Apps without an ``identity`` block get a stable id derived from the credential (a SHA-256
    prefix, never the credential itself) and a generic label.

    :raises ProviderError: ``invalid_credentials`` on 401/403, ``temporarily_unavailable`` on
        timeouts and network errors, ``invalid_response`` on non-JSON or a missing id.
    """
    if app.identity is None:
        secret = str(credentials.get("api_key") or credentials.get("username") or "")
        digest = hashlib.sha256(f"{app.slug}:{secret}".encode()).hexdigest()[:16]
        label = credentials.get("username") or f"{app.title} account"
        return digest, str(label)
    kwargs = request_kwargs(app, credentials)
    kwargs["headers"]["Accept"] = "application/json"
    try:
        response = requests.get(app.identity.url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout as exc:
        raise ProviderError(
            "temporarily_unavailable", f"{app.title} did not answer in time."
        ) from exc
    except requests.RequestException as exc:
        raise ProviderError(
            "temporarily_unavailable", f"{app.title} could not be reached."
        ) from exc
    if response.status_code in (401, 403):
        raise ProviderError("invalid_credentials", f"{app.title} did not accept these credentials.")
    if response.status_code != 200:
        raise ProviderError(
            "server_error",
            f"{app.title} answered the account lookup with HTTP {response.status_code}.",
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderError(
            "invalid_response", f"{app.title} sent an account that is not JSON."
        ) from exc
    external_id = dotted(data, app.identity.external_id)
    if external_id in (None, ""):
        raise ProviderError("invalid_response", f"{app.title} did not say which account this is.")
    label = dotted(data, app.identity.label) if app.identity.label else None
    return str(external_id)[:255], str(label or external_id)[:255]
