"""Verified phone numbers: a 6-digit code sent by text, confirmed within PHONE_CODE_TTL_MINUTES and
PHONE_CODE_MAX_ATTEMPTS tries; then the number is the person's verified number and takes their texts while it
is their profile's phone.

The code is kept only as an HMAC keyed with the secret key (and bound to the person and the number): a
database dump alone does not tell it, and a 6-digit code could not be kept safe by a slow hash anyway.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import Profile, User

from .models import PhoneChallenge, VerifiedPhone

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SEPARATORS = re.compile(r"[\s\-().]")


class PhoneError(Exception):
    """A refused step, with a stable code for the API (invalid_code, code_expired, too_many_attempts, ...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def normalize(number: str) -> str:
    """Spaces, dashes, dots and brackets out: `+1 (555) 123-4567` -> `+15551234567`."""
    return _SEPARATORS.sub("", number or "")


def _digest(user: User, number: str, code: str) -> str:
    return salted_hmac("notifications.phones.code", f"{user.pk}:{number}:{code}", algorithm="sha256").hexdigest()


def start_verification(*, user: User, number: str, now: datetime | None = None) -> str:
    """Make a new code for `number` (replacing any open one) and text it. Answers the code (for the caller's
    tests only; the API never shows it)."""
    from .sms import backend

    now = now or timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = settings.PHONE_CODE_TTL_MINUTES
    PhoneChallenge.objects.update_or_create(
        user=user,
        defaults={
            "number": number,
            "code_hash": _digest(user, number, code),
            "attempts": 0,
            "created_at": now,
            "expires_at": now + timedelta(minutes=ttl),
        },
    )
    backend().send(number, f"OpenVitals code: {code}. It expires in {ttl} minutes. Do not share it.")
    return code


def confirm(*, user: User, number: str, code: str, now: datetime | None = None) -> VerifiedPhone:
    """Check a code; right: the number is verified (and becomes the profile's phone); wrong: PhoneError."""
    now = now or timezone.now()
    challenge = PhoneChallenge.objects.filter(user=user, number=number).first()
    if challenge is None:
        raise PhoneError("no_code", "No code was sent to this number; ask for one first.")
    if challenge.expires_at <= now:
        raise PhoneError("code_expired", "The code has expired; ask for a new one.")
    # Count the try before checking it, by a conditional update: parallel guesses cannot exceed the limit.
    counted = PhoneChallenge.objects.filter(
        pk=challenge.pk, code_hash=challenge.code_hash, attempts__lt=settings.PHONE_CODE_MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1)
    if not counted:
        raise PhoneError("too_many_attempts", "Too many wrong codes; ask for a new one.")
    if not constant_time_compare(challenge.code_hash, _digest(user, number, code)):
        raise PhoneError("invalid_code", "The code is wrong.")
    with transaction.atomic():
        verified, _ = VerifiedPhone.objects.update_or_create(user=user, defaults={"number": number, "verified_at": now})
        Profile.objects.filter(user=user).update(phone=number)
        PhoneChallenge.objects.filter(pk=challenge.pk).delete()
    return verified


def sms_number(user: User) -> str | None:
    """The number texts go to: the verified one, while the profile's phone is still that number."""
    verified = VerifiedPhone.objects.filter(user=user).first()
    if verified is None:
        return None
    profile_phone = Profile.objects.filter(user=user).values_list("phone", flat=True).first()
    if normalize(profile_phone or "") != verified.number:
        return None
    return verified.number
