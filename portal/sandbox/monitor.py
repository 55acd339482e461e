"""Request counters and injected faults: what the ``/_sandbox/`` test hooks read and set.

The sandbox is served by a threaded server, so every read and write goes through one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

#: Fault modes of the token endpoint. ``"500"``: HTTP 500 with a plain-text body. ``"timeout"``:
#: sleep ``timeout_seconds``, then answer normally (a slow provider that finishes the work even
#: when the client has gone: a rotated refresh token whose response is lost is gone too).
#: ``"delay"``: sleep ``timeout_seconds``, then answer normally if the client is still
#: connected; if it hung up meanwhile, drop the request unprocessed (a provider that cancels
#: abandoned requests: nothing issued, nothing rotated). ``"html"``: 200 ``text/html`` error
#: page. ``"malformed_json"``: 200 ``application/json`` whose body does not parse.
TOKEN_FAULTS: tuple[str, ...] = ("500", "timeout", "delay", "html", "malformed_json")

#: PKCE policies of the authorization endpoint. ``"required"`` (default): every authorization
#: request needs an S256 challenge. ``"optional"``: a confidential client may leave it out, as
#: most real providers allow (the code is then bound to nothing but the client: what an
#: authorization-code injection test needs). A challenge that is sent is always enforced.
PKCE_POLICIES: tuple[str, ...] = ("required", "optional")
#: Faults of the OpenID Connect ``id_token``. ``"wrong_nonce"``: its ``nonce`` claim is not the
#: one the authorization request sent (still correctly signed).
ID_TOKEN_FAULTS: tuple[str, ...] = ("wrong_nonce",)

#: Faults of the resource API (``/api/``, ``/apikey/``, ``/basic/``). ``"500"``: every request
#: answers HTTP 500 (a provider outage). ``"reject_credentials"``: demo API keys and Basic
#: credentials are refused with 401 (the key was revoked); bearer tokens still work.
API_FAULTS: tuple[str, ...] = ("500", "reject_credentials")

#: Grant types counted in :meth:`Monitor.stats`.
COUNTED_GRANT_TYPES: tuple[str, ...] = ("authorization_code", "refresh_token", "client_credentials")

#: ``timeout_seconds`` when a ``"timeout"`` fault is set without one, in seconds.
DEFAULT_TIMEOUT_SECONDS = 30.0
#: Longest accepted ``timeout_seconds``, in seconds.
MAX_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class TokenFault:
    """The fault the token endpoint currently plays: ``mode`` from :data:`TOKEN_FAULTS`."""

    mode: str
    timeout_seconds: float


class Monitor:
    """Thread-safe counters and the current token-endpoint fault of one sandbox app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token_requests = dict.fromkeys(COUNTED_GRANT_TYPES, 0)
        self._revocations = 0
        self._userinfo_requests = 0
        self._api_requests = 0
        self._fault: TokenFault | None = None
        self._pkce = "required"
        self._id_token_fault: str | None = None
        self._api_fault: str | None = None

    @property
    def api_fault(self) -> str | None:
        """The fault the resource API plays (:data:`API_FAULTS`), or ``None``."""
        with self._lock:
            return self._api_fault

    def set_api_fault(self, mode: str | None) -> None:
        """Make the resource API misbehave until set back to ``None``.

        :raises ValueError: on an unknown mode.
        """
        if mode is not None and mode not in API_FAULTS:
            raise ValueError(f"api must be null or one of {list(API_FAULTS)}")
        with self._lock:
            self._api_fault = mode

    def count_token_request(self, grant_type: str | None) -> None:
        """Count one request that reached the token endpoint (before any fault plays)."""
        with self._lock:
            if grant_type in self._token_requests:
                self._token_requests[grant_type] += 1

    def count_revocation(self) -> None:
        """Count one request that reached the revocation endpoint."""
        with self._lock:
            self._revocations += 1

    def count_userinfo(self) -> None:
        """Count one request that reached the userinfo endpoint."""
        with self._lock:
            self._userinfo_requests += 1

    def count_api_request(self) -> None:
        """Count one request that reached the resource API (``/api/``, ``/apikey/``,
        ``/basic/``), whatever its outcome."""
        with self._lock:
            self._api_requests += 1

    def stats(self) -> dict[str, Any]:
        """``{"token_requests": {"authorization_code": n, "refresh_token": n},
        "revocations": n, "userinfo_requests": n, "api_requests": n}``."""
        with self._lock:
            return {
                "token_requests": dict(self._token_requests),
                "revocations": self._revocations,
                "userinfo_requests": self._userinfo_requests,
                "api_requests": self._api_requests,
            }

    @property
    def token_fault(self) -> TokenFault | None:
        """The fault the next token-endpoint requests play, or ``None``."""
        with self._lock:
            return self._fault

    def set_token_fault(self, mode: str | None, timeout_seconds: float | None = None) -> None:
        """Make every following token-endpoint request misbehave until set back to ``None``.

        :param mode: one of :data:`TOKEN_FAULTS`, or ``None`` to answer normally again.
        :param timeout_seconds: how long ``"timeout"`` and ``"delay"`` sleep; default
            :data:`DEFAULT_TIMEOUT_SECONDS`.
        :raises ValueError: on an unknown mode or a timeout outside ``0..MAX_TIMEOUT_SECONDS``.
        """
        if mode is not None and mode not in TOKEN_FAULTS:
            raise ValueError(f"token_endpoint must be null or one of {list(TOKEN_FAULTS)}")
        seconds = DEFAULT_TIMEOUT_SECONDS if timeout_seconds is None else float(timeout_seconds)
        if not 0 <= seconds <= MAX_TIMEOUT_SECONDS:
            raise ValueError(f"timeout_seconds must be between 0 and {MAX_TIMEOUT_SECONDS:g}")
        with self._lock:
            self._fault = None if mode is None else TokenFault(mode, seconds)

    @property
    def pkce(self) -> str:
        """The PKCE policy of the authorization endpoint, one of :data:`PKCE_POLICIES`."""
        with self._lock:
            return self._pkce

    def set_pkce(self, policy: str) -> None:
        """Set the PKCE policy (see :data:`PKCE_POLICIES`).

        :raises ValueError: on an unknown policy.
        """
        if policy not in PKCE_POLICIES:
            raise ValueError(f"pkce must be one of {list(PKCE_POLICIES)}")
        with self._lock:
            self._pkce = policy

    @property
    def id_token_fault(self) -> str | None:
        """The fault the next ``id_token`` plays (:data:`ID_TOKEN_FAULTS`), or ``None``."""
        with self._lock:
            return self._id_token_fault

    def set_id_token_fault(self, mode: str | None) -> None:
        """Make every following ``id_token`` misbehave until set back to ``None``.

        :raises ValueError: on an unknown mode.
        """
        if mode is not None and mode not in ID_TOKEN_FAULTS:
            raise ValueError(f"id_token must be null or one of {list(ID_TOKEN_FAULTS)}")
        with self._lock:
            self._id_token_fault = mode

    def faults(self) -> dict[str, Any]:
        """``{"token_endpoint": mode | None, "timeout_seconds": float | None, "pkce": policy,
        "id_token": mode | None}``."""
        fault = self.token_fault
        shown: dict[str, Any] = {"token_endpoint": None, "timeout_seconds": None}
        if fault is not None:
            shown = {"token_endpoint": fault.mode, "timeout_seconds": fault.timeout_seconds}
        return {
            **shown,
            "pkce": self.pkce,
            "id_token": self.id_token_fault,
            "api": self.api_fault,
        }

    def reset(self) -> None:
        """Clear the faults (PKCE required again) and every counter."""
        with self._lock:
            self._token_requests = dict.fromkeys(COUNTED_GRANT_TYPES, 0)
            self._revocations = 0
            self._userinfo_requests = 0
            self._api_requests = 0
            self._fault = None
            self._pkce = "required"
            self._id_token_fault = None
            self._api_fault = None
