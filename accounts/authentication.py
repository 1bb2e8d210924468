"""Bearer JWT authentication that also refuses tokens from ended sessions."""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from .tokens import SESSION_VERSION_CLAIM


class JWTAuthentication(BaseJWTAuthentication):
    def get_user(self, validated_token):  # noqa: ANN001 - SimpleJWT's signature
        user = super().get_user(validated_token)
        if validated_token.get(SESSION_VERSION_CLAIM) != user.session_version:
            raise AuthenticationFailed("This session has ended; sign in again.", code="session_ended")
        return user
