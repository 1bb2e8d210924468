"""JWTs that carry the session version, and one-time tokens for emailed links."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from rest_framework_simplejwt.tokens import RefreshToken

from .models import User

SESSION_VERSION_CLAIM = "sv"


class SessionRefreshToken(RefreshToken):
    """A refresh token (and the access tokens made from it) tied to the user's session version.

    Bumping `User.session_version` ends every session at once: refresh and access tokens
    issued under an older version are refused.
    """

    @classmethod
    def for_user(cls, user: User) -> SessionRefreshToken:
        token = super().for_user(user)
        token[SESSION_VERSION_CLAIM] = user.session_version
        return token


def issue_tokens(user: User) -> dict[str, str]:
    refresh = SessionRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


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
