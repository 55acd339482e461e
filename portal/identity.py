"""Credential placement on outgoing requests, and the identity lookup after connect.

The identity lookup learns which external account was just connected: one request (GET, or
POST with the catalog's JSON ``body``) to the app's ``identity.url`` with the new credentials,
reading ``external_id`` and ``label`` from the JSON by dotted path (catalog ``identity`` block).

Both take the :class:`~portal.catalog.App` resolved for the account (:meth:`App.resolve`), so
account-field placeholders are already filled in.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import requests

from .catalog import App, InvalidAccountField, dotted, validate_token_field
from .errors import ProviderError
from .outbound import HostRefused, Outbound, refused_message, user_chosen


def request_kwargs(app: App, credentials: dict[str, Any]) -> dict[str, Any]:
    """``requests`` keyword arguments (``headers``, ``params``, ``auth``) carrying ``credentials``
    the way the app's catalog entry says, plus its static ``api.headers``.

    OAuth 2.0 (both grants) and bearer API keys use ``Authorization: Bearer`` (RFC 6750 §2.1),
    unless an oauth2 app's ``auth.placement`` names another header (Shopify's
    ``X-Shopify-Access-Token``);
    basic uses RFC 7617; header API keys use the configured name and ``prefix``; query keys the
    configured parameter; ``basic_username`` keys go as the HTTP Basic user name with the
    configured (default empty) password, ``basic_password`` keys as the password with the
    configured fixed user name (Mailgun's ``api``). Credential headers are set last, so a static header
    of the same name never replaces them. ``api.headers`` placeholders are filled by
    :meth:`App.headers_for` (the host's client id/secret, the account's validated fields).
    """
    headers: dict[str, str] = app.headers_for() if app.api_headers else {}
    params: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    kind = credentials.get("type")
    if kind in ("oauth2", "oauth2_client_credentials"):
        where = app.token_placement
        if where.placement_in == "header" and where.name and kind == "oauth2":
            headers[where.name] = where.prefix + credentials["access_token"]
        else:
            headers["Authorization"] = f"Bearer {credentials['access_token']}"
    elif kind == "api_key" and app.api_key is not None:
        key = credentials["api_key"]
        placement = app.api_key.placement_in
        if placement == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif placement == "header":
            headers[app.api_key.placement_name or "X-API-Key"] = app.api_key.prefix + key
        elif placement == "basic_username":
            auth = (key, app.api_key.password)
        elif placement == "basic_password":
            auth = (app.api_key.username, key)
        else:
            params[app.api_key.placement_name or "api_key"] = key
    elif kind == "basic":
        auth = (credentials["username"], credentials["password"])
    return {"headers": headers, "params": params, "auth": auth}


def fetch_identity(
    app: App, credentials: dict[str, Any], timeout: float, outbound: Outbound | None = None
) -> tuple[str, str]:
    """``(external_id, label)`` of the account the credentials belong to (see
    :func:`lookup_identity`)."""
    external_id, label, _ = lookup_identity(app, credentials, timeout, outbound)
    return external_id, label


def lookup_identity(
    app: App, credentials: dict[str, Any], timeout: float, outbound: Outbound | None = None
) -> tuple[str, str, dict[str, str]]:
    """``(external_id, label, fields)`` of the account the credentials belong to; ``fields``
    are the catalog's ``identity.fields`` read from the same answer, each validated by
    :func:`~portal.catalog.validate_token_field` (the account field's format, else an https
    URL) before anything splices it into a URL or header.

    Apps without an ``identity`` block get a stable id derived from the credential (a SHA-256
    prefix, never the credential itself) and a generic label.

    For apps whose host the end user chose (:func:`~portal.outbound.user_chosen`) the request
    goes through ``outbound`` (default: public addresses only): resolved once, checked, and
    sent to the checked address (:mod:`portal.outbound`).

    :raises ProviderError: ``upstream_refused`` when the host resolves to a non-public address
        (nothing sent), ``invalid_credentials`` on 401/403, ``temporarily_unavailable`` on
        timeouts and network errors, ``invalid_response`` on non-JSON, a missing id or an
        identity field that fails validation.
    """
    if app.identity is None:
        secret = str(
            credentials.get("api_key")
            or credentials.get("username")
            or credentials.get("client_id")
            or ""
        )
        seed = f"{app.slug}:{secret}"
        if credentials.get("account_fields"):
            # The same key on two workspaces is two accounts.
            seed += ":" + json.dumps(credentials["account_fields"], sort_keys=True)
        digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
        label = (
            credentials.get("username") or credentials.get("client_id") or f"{app.title} account"
        )
        return digest, str(label)[:255], {}
    data = _fetch_json(
        app,
        credentials,
        timeout,
        outbound,
        method=app.identity.method,
        url=app.identity.url,
        body=(app.identity.body,)
        if app.identity.method == "POST" and app.identity.has_body
        else (),
    )
    external_id = dotted(data, app.identity.external_id)
    if external_id in (None, ""):
        raise ProviderError("invalid_response", f"{app.title} did not say which account this is.")
    label = dotted(data, app.identity.label) if app.identity.label else None
    fields: dict[str, str] = {}
    for name, path in app.identity.fields.items():
        try:
            fields[name] = validate_token_field(app, name, dotted(data, path))
        except InvalidAccountField as exc:
            raise ProviderError("invalid_response", exc.message) from exc
    return str(external_id)[:255], str(label or external_id)[:255], fields


def run_lookups(
    app: App, credentials: dict[str, Any], timeout: float, outbound: Outbound | None = None
) -> dict[str, str]:
    """The placeholders the app's ``lookups:`` calls fill, in order: ``GET`` each lookup's URL
    with the new credentials (as the identity lookup, through ``outbound`` for end-user-chosen
    hosts) and read its ``fields`` by dotted path, each validated by
    :func:`~portal.catalog.validate_token_field` before anything splices it into a URL.
    ``app`` is resolved with the account fields known so far.

    :returns: ``{name: validated value}`` (``{}`` for an app without lookups).
    :raises ProviderError: as :func:`lookup_identity`; ``invalid_response`` also when a value
        is missing or fails validation (e.g. an account with no Atlassian site).
    """
    found: dict[str, str] = {}
    for lookup in app.lookups:
        data = _fetch_json(app, credentials, timeout, outbound, method="GET", url=lookup.url)
        for name, path in lookup.fields.items():
            try:
                found[name] = validate_token_field(app, name, dotted(data, path))
            except InvalidAccountField as exc:
                raise ProviderError("invalid_response", exc.message) from exc
    return found


def _fetch_json(
    app: App,
    credentials: dict[str, Any],
    timeout: float,
    outbound: Outbound | None,
    *,
    method: str,
    url: str,
    body: tuple[Any, ...] = (),
) -> Any:
    """One call with the account's credentials (``body``: ``(json_value,)`` to send one), no
    redirect followed; the parsed JSON of its 200 answer.

    :raises ProviderError: as :func:`lookup_identity`.
    """
    kwargs = request_kwargs(app, credentials)
    kwargs["headers"].setdefault("Accept", "application/json")
    if body:
        kwargs["data"] = json.dumps(body[0]).encode()
        kwargs["headers"]["Content-Type"] = "application/json"
    try:
        if user_chosen(app):
            with (outbound or Outbound()).session() as session:
                response = session.request(
                    method, url, timeout=timeout, allow_redirects=False, **kwargs
                )
        else:
            response = requests.request(
                method, url, timeout=timeout, allow_redirects=False, **kwargs
            )
    except HostRefused as exc:
        raise ProviderError("upstream_refused", refused_message(app)) from exc
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
    if response.status_code == 404:  # e.g. a workspace or region the end user mistyped
        raise ProviderError(
            "server_error",
            f"{app.title} did not find this account. Check the details you entered.",
        )
    if response.status_code != 200:
        raise ProviderError(
            "server_error",
            f"{app.title} could not look up the account (error {response.status_code}). "
            "Please try again.",
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderError(
            "invalid_response", f"{app.title} sent an account that is not JSON."
        ) from exc
    failure = app.error_when.failure(data) if app.error_when is not None else None
    if failure is not None:  # api.error_when: a 200 whose body says failure (Slack)
        raise ProviderError(
            "server_error", f"{app.title} could not look up the account ({failure})."
        )
    return data
