"""JWTs tied to a sign-in session, and one-time tokens for emailed links."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from .models import AuthSession, IssuedRefreshToken, User

SESSION_CLAIM = "sid"
SUCCESSOR_SALT = "openvitals.accounts.refresh_successor"


def token_hash(token: str) -> str:
    """What is stored of a refresh token: its SHA-256 (the token has 128 random or HMAC bits: no slow KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def refresh_lifetime() -> timedelta:
    return api_settings.REFRESH_TOKEN_LIFETIME


def successor_jtis(refresh_jti: str) -> tuple[str, str]:
    """The ids of the refresh and access token that replace a spent refresh token.

    Rotation must be able to answer the same new pair again within the grace window (a client
    that lost the answer retries) without keeping that pair anywhere. So the pair is re-minted,
    not stored: its ids are an HMAC of the spent token's id under SECRET_KEY (unguessable without
    it, and unique per spent token), and its iat/exp come from the spend time on the spent token's
    row. HS256 is deterministic, so the same inputs sign to the same bytes (the stored hash of the
    successor checks it). An encrypted copy of the pair was the alternative; but then the database
    plus one key would again hold live credentials, which is what storing hashes avoids.
    """
    refresh = salted_hmac(SUCCESSOR_SALT, f"refresh:{refresh_jti}", algorithm="sha256").hexdigest()[:32]
    access = salted_hmac(SUCCESSOR_SALT, f"access:{refresh_jti}", algorithm="sha256").hexdigest()[:32]
    return refresh, access


def _mint(token_class: type[Token], *, jti: str, issued_at: datetime, claims: dict[str, str]) -> str:
    token = token_class()  # the blacklist app is not installed: making one writes nothing
    token.set_iat(at_time=issued_at)
    token.set_exp(from_time=issued_at)
    token[api_settings.JTI_CLAIM] = jti
    for name, value in claims.items():
        token[name] = value
    return str(token)


def mint_pair(*, session: AuthSession, refresh_jti: str, access_jti: str, issued_at: datetime) -> dict[str, str]:
    """A session's access and refresh token; the same arguments always give the same two strings."""
    claims = {api_settings.USER_ID_CLAIM: str(session.user_id), SESSION_CLAIM: str(session.pk)}
    return {
        "access": _mint(AccessToken, jti=access_jti, issued_at=issued_at, claims=claims),
        "refresh": _mint(RefreshToken, jti=refresh_jti, issued_at=issued_at, claims=claims),
    }


def record_refresh_token(*, session: AuthSession, refresh: str, jti: str, issued_at: datetime) -> None:
    IssuedRefreshToken.objects.create(
        session=session,
        jti=jti,
        token_hash=token_hash(refresh),
        created_at=issued_at,
        expires_at=issued_at + refresh_lifetime(),
    )


@transaction.atomic
def issue_tokens(user: User) -> dict[str, str]:
    """Start a sign-in session for the user and answer its first access and refresh token."""
    now = timezone.now()
    session = AuthSession.objects.create(user=user, created_at=now, expires_at=now + refresh_lifetime())
    refresh_jti = uuid.uuid4().hex
    pair = mint_pair(session=session, refresh_jti=refresh_jti, access_jti=uuid.uuid4().hex, issued_at=now)
    record_refresh_token(session=session, refresh=pair["refresh"], jti=refresh_jti, issued_at=now)
    return pair


EMAIL_VERIFICATION_SALT = "openvitals.accounts.email_verification"


def make_email_verification_token(user: User) -> str:
    """A signed, expiring token naming the user and the address being verified."""
    return signing.dumps({"user": str(user.pk), "email": user.email}, salt=EMAIL_VERIFICATION_SALT)


def read_email_verification_token(token: str) -> dict[str, str] | None:
    try:
        return signing.loads(token, salt=EMAIL_VERIFICATION_SALT, max_age=settings.EMAIL_VERIFICATION_TIMEOUT)
    except signing.BadSignature:  # includes SignatureExpired
        return None


# Single use: the hash covers the password and last login, which the reset changes.
password_reset_token = PasswordResetTokenGenerator()

INVITATION_SALT = "openvitals.accounts.invitation"


def make_invitation_token(invitation_id: str) -> str:
    return signing.dumps(str(invitation_id), salt=INVITATION_SALT)


def read_invitation_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature:
        return None
