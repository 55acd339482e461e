"""portal/crypto.py: sealing credentials at rest, key rotation, row binding."""

from __future__ import annotations

import base64

import pytest

from portal.crypto import Sealer, generate_key
from portal.errors import ConfigurationError, CredentialError

CREDENTIALS = {
    "type": "oauth2",
    "access_token": "at-PLAINTEXT-1f2e3d",
    "refresh_token": "rt-PLAINTEXT-9a8b7c",
    "expires_at": 1_900_000_000,
}


def test_seal_open_round_trip() -> None:
    sealer = Sealer([generate_key()])
    blob = sealer.seal("ca_row1", CREDENTIALS)
    assert isinstance(blob, bytes)
    assert sealer.open("ca_row1", blob) == CREDENTIALS


def test_keys_may_be_bytes_or_str() -> None:
    key = generate_key()
    blob = Sealer([key]).seal("ca_row1", CREDENTIALS)
    assert Sealer([key.encode()]).open("ca_row1", blob) == CREDENTIALS


def test_blob_contains_no_plaintext() -> None:
    sealer = Sealer([generate_key()])
    blob = sealer.seal("ca_row1", CREDENTIALS)
    decoded = base64.urlsafe_b64decode(blob + b"=" * (-len(blob) % 4))
    for secret in ("at-PLAINTEXT-1f2e3d", "rt-PLAINTEXT-9a8b7c", "access_token", "ca_row1"):
        assert secret.encode() not in blob
        assert secret.encode() not in decoded


def test_each_seal_is_fresh() -> None:
    sealer = Sealer([generate_key()])
    assert sealer.seal("ca_row1", CREDENTIALS) != sealer.seal("ca_row1", CREDENTIALS)


@pytest.mark.security("Key rotation (add new key, rotate, drop old key)")
def test_key_rotation_add_rotate_drop_old_key() -> None:
    old, new = generate_key(), generate_key()
    blob = Sealer([old]).seal("ca_row1", CREDENTIALS)

    both = Sealer([new, old])
    # While both keys are configured, the old blob still opens.
    assert both.open("ca_row1", blob) == CREDENTIALS
    rotated = both.rotate(blob)
    assert rotated != blob

    only_new = Sealer([new])
    assert only_new.open("ca_row1", rotated) == CREDENTIALS
    # Blobs sealed after the new key was prepended are sealed with the new key.
    fresh = both.seal("ca_row2", CREDENTIALS)
    assert only_new.open("ca_row2", fresh) == CREDENTIALS


def test_dropping_old_key_without_rotating_fails() -> None:
    old, new = generate_key(), generate_key()
    blob = Sealer([old]).seal("ca_row1", CREDENTIALS)
    with pytest.raises(CredentialError):
        Sealer([new]).open("ca_row1", blob)


def test_rotate_with_unknown_key_raises_credential_error() -> None:
    blob = Sealer([generate_key()]).seal("ca_row1", CREDENTIALS)
    with pytest.raises(CredentialError):
        Sealer([generate_key()]).rotate(blob)


def test_rotation_keeps_row_binding() -> None:
    old, new = generate_key(), generate_key()
    blob = Sealer([old]).seal("ca_row1", CREDENTIALS)
    rotated = Sealer([new, old]).rotate(blob)
    with pytest.raises(CredentialError):
        Sealer([new]).open("ca_row2", rotated)


@pytest.mark.security("A credential blob copied onto another row is rejected")
def test_blob_copied_to_another_row_is_rejected() -> None:
    sealer = Sealer([generate_key()])
    blob = sealer.seal("ca_victim", CREDENTIALS)
    with pytest.raises(CredentialError):
        sealer.open("ca_attacker", blob)


@pytest.mark.parametrize("position", [0, 10, 40, -5, -1])
def test_tampered_blob_is_rejected(position: int) -> None:
    sealer = Sealer([generate_key()])
    blob = bytearray(sealer.seal("ca_row1", CREDENTIALS))
    original = blob[position]
    # Swap to another character of the url-safe base64 alphabet so the token stays decodable.
    blob[position] = ord("A") if original != ord("A") else ord("B")
    with pytest.raises(CredentialError):
        sealer.open("ca_row1", bytes(blob))


@pytest.mark.parametrize("blob", [b"", b"not a fernet token", b"gAAAAA" + b"x" * 80])
def test_garbage_blob_is_rejected(blob: bytes) -> None:
    with pytest.raises(CredentialError):
        Sealer([generate_key()]).open("ca_row1", blob)


def test_truncated_blob_is_rejected() -> None:
    sealer = Sealer([generate_key()])
    blob = sealer.seal("ca_row1", CREDENTIALS)
    with pytest.raises(CredentialError):
        sealer.open("ca_row1", blob[:-8])


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        base64.urlsafe_b64encode(b"x" * 16).decode(),  # too short: 16 bytes
        base64.urlsafe_b64encode(b"x" * 64).decode(),  # too long: 64 bytes
        "",
    ],
)
def test_invalid_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Sealer([key])
    assert "PORTAL_ENCRYPTION_KEYS" in str(info.value)


def test_one_invalid_key_among_valid_ones_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Sealer([generate_key(), "garbage"])


def test_empty_keys_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        Sealer([])
    assert "PORTAL_ENCRYPTION_KEYS" in str(info.value)


def test_generate_key_is_a_valid_distinct_fernet_key() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert len(base64.urlsafe_b64decode(a)) == 32
    Sealer([a, b])  # does not raise
