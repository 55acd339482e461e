"""A small Python client for host backends: the portal's JSON API, server-to-server.

Every call authenticates with the project's app secret as bearer and names the end user in
``X-Portal-User-Id`` (``?user_id=`` for ids that are not printable ASCII, which an HTTP header
cannot carry). The project is the app secret's: a client sees, connects and triggers only for
that project (app key), whatever user id it names; the same user id in another project is
another end user. Errors come back as :class:`PortalClientError` carrying the API's error shape
``{"error": code, "message": text, "error_details": [...]}``::

    from portal import PortalClient

    portal = PortalClient("https://portal.example/portal", app_secret=os.environ["PORTAL_SECRET"])
    token = portal.create_session("u-42", origin="https://app.example")["token"]
    accounts = portal.list_accounts("u-42", app="slack")
    portal.trigger_event("u-42", "my-app-key", "Contact Created", {"email": "a@b.example"})
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from .errors import PortalError


class PortalClientError(PortalError):
    """The portal answered an error (or could not be reached: ``status`` 0).

    :ivar status: HTTP status, ``0`` when no answer arrived.
    :ivar error: the machine-readable code (``"not_found"``, ``"invalid_params"``, …).
    :ivar message: the human-readable message.
    :ivar details: ``error_details`` (e.g. ``[{"field", "message"}]``), possibly empty.
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.details = details or []


class PortalClient:
    """Server-to-server access to one portal for one host project.

    :param base_url: where the portal is mounted, e.g. ``"https://portal.example/portal"``
        (``PORTAL_BASE_URL`` + ``PORTAL_URL_PREFIX``).
    :param app_secret: one of the project's secrets from ``PORTAL_APP_KEYS``.
    :param timeout: per request, in seconds.
    :param session: a :class:`requests.Session` to reuse (connection pooling, proxies).
    """

    def __init__(
        self,
        base_url: str,
        app_secret: str,
        timeout: float = 10,
        session: requests.Session | None = None,
    ) -> None:
        self.api = base_url.rstrip("/") + "/api/v1"
        self.timeout = timeout
        self._secret = app_secret
        self._http = session or requests.Session()

    def __repr__(self) -> str:  # never shows the secret
        return f"PortalClient({self.api!r})"

    # ----------------------------------------------------------------------- plumbing

    def _send(
        self,
        method: str,
        path: str,
        user_id: str | None,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._secret}", "Accept": "application/json"}
        query: dict[str, str | bytes] = dict(params or {})
        if user_id is not None:
            if user_id.isascii() and user_id.isprintable():
                headers["X-Portal-User-Id"] = user_id
            else:
                # UTF-8, keeping a lone surrogate as its 3 bytes: the portal, not this client,
                # decides that such an id is invalid (a 400 invalid_user_id).
                query["user_id"] = user_id.encode("utf-8", "surrogatepass")
        try:
            return self._http.request(
                method,
                self.api + path,
                headers=headers,
                params=query or None,
                json=json,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise PortalClientError(0, "timeout", "The portal did not answer in time.") from exc
        except requests.RequestException as exc:
            raise PortalClientError(
                0, "unreachable", f"The portal could not be reached ({type(exc).__name__})."
            ) from exc

    @staticmethod
    def _error(response: requests.Response) -> PortalClientError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return PortalClientError(
                response.status_code,
                body["error"],
                str(body.get("message") or body["error"]),
                body.get("error_details") if isinstance(body.get("error_details"), list) else [],
            )
        return PortalClientError(
            response.status_code, f"http_{response.status_code}", response.text[:500]
        )

    def _json(
        self,
        method: str,
        path: str,
        user_id: str | None,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        response = self._send(method, path, user_id, json=json, params=params)
        if not 200 <= response.status_code < 300:
            raise self._error(response)
        return response.json()

    # ----------------------------------------------------------------------- API

    def create_session(self, user_id: str, origin: str) -> dict[str, Any]:
        """A session token for ``user_id`` to hand to the host page (iframe embed).

        :param origin: the host page's origin; must be in ``PORTAL_ALLOWED_ORIGINS``.
        :returns: ``{token, expires_at, user_id, origin}``.
        """
        body = {"userId": user_id, "origin": origin}
        result: dict[str, Any] = self._json("POST", "/sessions", None, json=body)
        return result

    def list_apps(self, user_id: str) -> list[dict[str, Any]]:
        """Enabled apps with ``user_id``'s ``connected`` flags: ``[AppSummary…]``."""
        result: list[dict[str, Any]] = self._json("GET", "/apps", user_id)["apps"]
        return result

    def list_accounts(
        self, user_id: str, app: str | None = None, tag: str | None = None
    ) -> list[dict[str, Any]]:
        """``user_id``'s connected accounts (of ``app`` when given; whose ``metadata.tags``
        holds ``tag`` when given), newest first."""
        params = {k: v for k, v in (("app", app), ("tag", tag)) if v is not None} or None
        result: list[dict[str, Any]] = self._json(
            "GET", "/connected-accounts", user_id, params=params
        )["connected_accounts"]
        return result

    def get_account(self, user_id: str, account_id: str) -> dict[str, Any]:
        """One connected account; another user's or project's id raises a 404
        :class:`PortalClientError`."""
        result: dict[str, Any] = self._json(
            "GET", f"/connected-accounts/{quote(account_id, safe='')}", user_id
        )
        return result

    def set_metadata(
        self, user_id: str, account_id: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace an account's metadata (a JSON object of at most 4 KiB; ``tags``: a list of
        at most 20 short strings); returns the Account.

        :raises PortalClientError: 400 ``invalid_metadata``, 404 for another user's account.
        """
        result: dict[str, Any] = self._json(
            "PATCH",
            f"/connected-accounts/{quote(account_id, safe='')}",
            user_id,
            json={"metadata": metadata},
        )
        return result

    def delete_account(self, user_id: str, account_id: str) -> dict[str, Any]:
        """Disconnect an account (revoked at the provider where it can be).

        :returns: ``{app, connectedAccountId, connected_accounts: [remaining…]}``.
        """
        result: dict[str, Any] = self._json(
            "DELETE", f"/connected-accounts/{quote(account_id, safe='')}", user_id
        )
        return result

    def invoke(
        self,
        user_id: str,
        name: str,
        params: dict[str, Any],
        connected_account_id: str | None = None,
    ) -> dict[str, Any]:
        """Run function ``name`` for ``user_id``.

        :returns: ``{network_code, output, next_page?}`` (``network_code`` is the upstream's
            status: a 4xx there is still a result, not an exception).
        :raises PortalClientError: not executed: 400 ``invalid_params``-style errors with
            ``details`` ``[{field, message}]``, 404 no account, 409 reconnect needed, 502/504.
        """
        body: dict[str, Any] = {"params": params}
        if connected_account_id is not None:
            body["connectedAccountId"] = connected_account_id
        response = self._send(
            "POST", f"/functions/{quote(name, safe='')}/invoke", user_id, json=body
        )
        if response.status_code != 200:
            raise self._error(response)
        result: dict[str, Any] = response.json()
        return result

    def request(
        self,
        user_id: str,
        app: str,
        path: str,
        method: str = "GET",
        json: Any = None,
        connected_account_id: str | None = None,
    ) -> Any:
        """Call the app's API through the proxy with ``user_id``'s credentials (Paragon's
        ``request``). ``path`` is relative to the app's API base URL and may carry a query.

        :returns: the upstream's JSON body (its text when not JSON; ``None`` when empty).
        :raises PortalClientError: the upstream or the portal answered outside 2xx (``error``
            is the portal's code, or ``http_<status>`` for an upstream body without one).
        """
        params = {"connectedAccountId": connected_account_id} if connected_account_id else None
        response = self._send(
            method.upper(),
            f"/proxy/{quote(app, safe='')}/{path.lstrip('/')}",
            user_id,
            json=json,
            params=params,
        )
        if not 200 <= response.status_code < 300:
            raise self._error(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def trigger_event(
        self, user_id: str, app_key: str, name: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Send app event ``name`` for ``user_id`` (Paragon's ``event``); the functions it
        runs are queued, not awaited.

        :param app_key: the project the app secret belongs to.
        :returns: ``{id, name, runs: [{id, function, status: "queued"}]}``.
        """
        result: dict[str, Any] = self._json(
            "POST",
            f"/projects/{quote(app_key, safe='')}/sdk/events/trigger",
            user_id,
            json={"name": name, "payload": payload},
        )
        return result

    def get_event(self, user_id: str, event_id: str) -> dict[str, Any]:
        """An event with its runs: ``{id, name, payload, created_at, runs: [{id, function,
        status, result, finished_at}]}``."""
        result: dict[str, Any] = self._json("GET", f"/events/{quote(event_id, safe='')}", user_id)
        return result
