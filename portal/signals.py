"""Blinker signals a mounted host subscribes to, to react in Python.

Each is sent with the Flask app as sender and keyword arguments:

* ``account_connected``: ``user_id``, ``app`` (slug), ``account`` (public account dict),
  ``created`` (``False`` when an existing external account was reconnected).
* ``account_disconnected``: ``user_id``, ``app``, ``account``, ``revoked`` (bool).
* ``connect_failed``: ``user_id``, ``app``, ``error`` (code), ``message``.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

account_connected = _signals.signal("account-connected")
account_disconnected = _signals.signal("account-disconnected")
connect_failed = _signals.signal("connect-failed")

#: Sent after an access token was refreshed: ``user_id``, ``app``, ``account_id``.
token_refreshed = _signals.signal("token-refreshed")
#: Sent when a refresh was refused (``invalid_grant``) and the account now needs the end user
#: to reconnect: ``user_id``, ``app``, ``account_id``, ``error``.
token_refresh_failed = _signals.signal("token-refresh-failed")
