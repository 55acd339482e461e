"""Per-app state of the sandbox, kept in ``app.extensions["sandbox"]``."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from flask import current_app
from joserfc.jwk import RSAKey

from .db import Store
from .monitor import Monitor


@dataclass(frozen=True)
class SandboxState:
    """Everything one sandbox app owns: database, Authlib server and protector, counters, and
    the id_token signing key."""

    store: Store
    server: AuthorizationServer
    protector: ResourceProtector
    monitor: Monitor
    #: The key that signs OpenID Connect ``id_token``s (RS256); its public half is ``/oauth/jwks``.
    id_token_key: RSAKey


def sandbox_state() -> SandboxState:
    """The :class:`SandboxState` of the current app."""
    state: SandboxState = current_app.extensions["sandbox"]
    return state
