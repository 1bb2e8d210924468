"""config/crypto.py: secrets at rest, with key rotation through FIELD_ENCRYPTION_KEYS."""

import pytest
from cryptography.fernet import Fernet

from config import crypto


def test_a_value_round_trips_and_is_not_stored_in_plaintext(settings):
    settings.FIELD_ENCRYPTION_KEYS = []  # the zero-setup default: a key derived from SECRET_KEY
    token = crypto.encrypt("whsec_very-secret")

    assert "very-secret" not in token
    assert crypto.decrypt(token) == "whsec_very-secret"


def test_keys_rotate_the_first_encrypts_and_every_one_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    stored = crypto.encrypt("whsec_a")

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(stored) == "whsec_a"
    rotated = crypto.rotate(stored)

    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "whsec_a"
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(stored)
