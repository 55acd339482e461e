"""Credential sealing with :class:`cryptography.fernet.MultiFernet`.

A sealed blob is a Fernet token (AES-128-CBC + HMAC-SHA256) over JSON
``{"row": <connected account id>, "data": <credentials>}``. Binding the row id inside the token
means a blob copied onto another row does not open there. Keys rotate by prepending a new key to
``PORTAL_ENCRYPTION_KEYS`` (it encrypts; all keys decrypt), calling :meth:`Sealer.rotate` on every
blob (``flask portal rotate-keys``), then dropping the old key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigurationError, CredentialError


class Sealer:
    """Seals and opens credential dicts for one row at a time.

    :param keys: Fernet keys, newest first (``str`` or ``bytes``, url-safe base64 of 32 bytes).
    :raises ConfigurationError: no key, or a key that is not a valid Fernet key.
    """

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ConfigurationError("PORTAL_ENCRYPTION_KEYS is empty: no key to seal credentials.")
        try:
            self._newest = Fernet(keys[0])
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "PORTAL_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(generate one with `flask portal generate-key`)."
            ) from exc

    def seal(self, row_id: str, data: dict[str, Any]) -> bytes:
        """Encrypt ``data`` for row ``row_id`` with the newest key; returns the token bytes."""
        plaintext = json.dumps({"row": row_id, "data": data}, separators=(",", ":"))
        return self._fernet.encrypt(plaintext.encode())

    def open(self, row_id: str, blob: bytes) -> dict[str, Any]:
        """Decrypt a blob sealed for ``row_id``.

        :raises CredentialError: no configured key opens it, it was tampered with, or it was
            sealed for another row.
        """
        try:
            envelope = json.loads(self._fernet.decrypt(blob))
        except (InvalidToken, ValueError) as exc:
            raise CredentialError(
                "credential blob cannot be decrypted with the configured keys"
            ) from exc
        if not isinstance(envelope, dict) or envelope.get("row") != row_id:
            raise CredentialError("credential blob belongs to another connected account")
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise CredentialError("credential blob has no credential data")
        return data

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is sealed under the newest key (one HMAC check and decrypt with that
        key alone): what ``flask portal rotate-keys`` skips, so a re-run resumes cheaply."""
        try:
            self._newest.decrypt(blob)
        except InvalidToken:
            return False
        return True

    def rotate(self, blob: bytes) -> bytes:
        """Re-encrypt ``blob`` under the newest key, keeping its content and row binding."""
        try:
            return self._fernet.rotate(blob)
        except InvalidToken as exc:
            raise CredentialError(
                "credential blob cannot be decrypted with the configured keys"
            ) from exc


def generate_key() -> str:
    """A new random Fernet key, as ``str``."""
    return Fernet.generate_key().decode()
