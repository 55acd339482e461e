"""Connect Portal: a self-hosted, embeddable connect portal for Flask.

Mount it with ``ConnectPortal(app)``; host backends compute the browser ``hash`` with
:func:`user_hash` (or sign a JWT user token with :func:`sign_user_token`).
"""

from __future__ import annotations

from .auth import sign_user_token, user_hash
from .client import PortalClient, PortalClientError
from .errors import PortalError
from .extension import ConnectPortal, current_portal
from .signals import account_connected, account_disconnected, connect_failed
from .webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "ConnectPortal",
    "PortalClient",
    "PortalClientError",
    "PortalError",
    "WebhookVerificationError",
    "account_connected",
    "account_disconnected",
    "connect_failed",
    "current_portal",
    "sign_user_token",
    "user_hash",
    "verify_webhook",
]

__version__ = "0.1.0"
