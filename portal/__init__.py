"""Connect Portal: a self-hosted, embeddable connect portal for Flask.

Mount it with ``ConnectPortal(app)``; host backends compute the browser ``hash`` with
:func:`user_hash`.
"""

from __future__ import annotations

from .auth import user_hash
from .errors import PortalError
from .extension import ConnectPortal, current_portal
from .signals import account_connected, account_disconnected, connect_failed

__all__ = [
    "ConnectPortal",
    "PortalError",
    "account_connected",
    "account_disconnected",
    "connect_failed",
    "current_portal",
    "user_hash",
]

__version__ = "0.1.0"
