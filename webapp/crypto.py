"""Encryption of OAuth tokens at rest (Fernet; several keys allow rotation, the first one encrypts)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class TokenDecryptionError(RuntimeError):
    """The stored tokens cannot be read with the configured keys."""


def _fernet() -> MultiFernet:
    keys: list[str] = current_app.config["TOKEN_ENCRYPTION_KEYS"]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_json(value: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(ciphertext: str) -> dict[str, Any]:
    try:
        return json.loads(_fernet().decrypt(ciphertext.encode()))
    except InvalidToken:
        raise TokenDecryptionError("stored tokens cannot be decrypted with TOKEN_ENCRYPTION_KEY") from None


def valid_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True
