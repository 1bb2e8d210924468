"""Bearer JWT authentication that also refuses tokens of ended sessions."""

from __future__ import annotations

import uuid

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from .models import AuthSession, User
from .tokens import SESSION_CLAIM


class JWTAuthentication(BaseJWTAuthentication):
    def get_validated_token(self, raw_token: bytes):  # noqa: ANN201 - SimpleJWT's signature
        """The token, or one error entry saying why not (SimpleJWT's answer lists every token class tried)."""
        try:
            return super().get_validated_token(raw_token)
        except InvalidToken as exc:
            messages = exc.detail.get("messages", []) if isinstance(exc.detail, dict) else []
            if any("expired" in str(message.get("message", "")).lower() for message in messages):
                raise AuthenticationFailed("The access token has expired; refresh it.", code="token_expired") from None
            raise AuthenticationFailed("The access token is not valid.", code="token_not_valid") from None

    def get_user(self, validated_token) -> User:  # noqa: ANN001 - SimpleJWT's signature
        """The token's user, found through its session: one query (the session joined with its user).

        That query replaces SimpleJWT's own user lookup, so checking the session costs a request nothing
        extra; the database is the truth, so a logout takes effect on the next request.
        """
        try:
            session_id = uuid.UUID(str(validated_token[SESSION_CLAIM]))
            user_id = uuid.UUID(str(validated_token[api_settings.USER_ID_CLAIM]))
        except (KeyError, ValueError):  # no session: a token from before sessions, which its app refreshes
            raise AuthenticationFailed("This session has ended; sign in again.", code="session_ended") from None
        # The profile joins too: reads show values in its preferred units, at no extra query.
        sessions = AuthSession.objects.live().select_related("user", "user__profile")
        session = sessions.filter(pk=session_id, user_id=user_id).first()
        if session is None:
            raise AuthenticationFailed("This session has ended; sign in again.", code="session_ended")
        if not session.user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return session.user
