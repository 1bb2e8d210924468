"""Encryption of small secrets at rest (webhook signing secrets; integrations' OAuth tokens later).

`encrypt(text) -> token` and `decrypt(token) -> text` with `cryptography`'s MultiFernet over the keys in
FIELD_ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so a key is rotated by putting a new one
first and dropping the old one once `rotate()` has re-encrypted what it protected. Plumbing: imports no app.

With no keys set (the zero-setup default) one key is derived from SECRET_KEY. Production must set
FIELD_ENCRYPTION_KEYS (Fernet keys: `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`), so that rotating SECRET_KEY does not make stored secrets unreadable.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "encrypt", "rotate"]


def _derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"openvitals.field-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    raw = [key.encode() for key in keys if key] or [_derived_key(secret_key)]
    return MultiFernet([Fernet(key) for key in raw])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(text: str) -> str:
    return _current().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext; raises InvalidToken when no configured key opens it."""
    return _current().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """The same plaintext encrypted with the first key (for re-encrypting after a key rotation)."""
    return _current().rotate(token.encode()).decode()
