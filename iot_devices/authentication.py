"""Device authentication: `Authorization: Api-Key <key>` or `X-Device-Key: <key>`.

A device is not a person: request.user is a DevicePrincipal, which no people's endpoint
accepts (they authenticate JWTs only), and request.auth is the Device.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions

from .models import DeviceAPIKey


class DevicePrincipal:
    """Who is calling when a device key is used: authenticated, but not a user."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_clinician = False
    sees_all_patients = False

    def __init__(self, device) -> None:  # noqa: ANN001
        self.device = device
        self.pk = None

    def __str__(self) -> str:
        return f"device {self.device.pk}"


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):  # noqa: ANN001, ANN201
        key = request.META.get("HTTP_X_DEVICE_KEY")
        if not key:
            keyword, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
            if keyword.lower() != self.keyword.lower():
                return None
            key = value.strip()
        if not key:
            raise exceptions.AuthenticationFailed("No device key.", code="device_key_missing")
        try:
            api_key = DeviceAPIKey.objects.get_from_key(key)
        except DeviceAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown or revoked device key.", code="device_key_invalid") from None
        if api_key.has_expired or not api_key.device.is_active:
            raise exceptions.AuthenticationFailed("This device key is not active.", code="device_inactive")
        return DevicePrincipal(api_key.device), api_key.device

    def authenticate_header(self, request) -> str:  # noqa: ANN001
        return self.keyword


class IsDevice:
    """Only a device key (not a person's token) may call this endpoint."""

    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        return isinstance(request.user, DevicePrincipal)

    def has_object_permission(self, request, view, obj) -> bool:  # noqa: ANN001
        return True


try:  # the OpenAPI description of the device key
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class DeviceKeyScheme(OpenApiAuthenticationExtension):
        target_class = DeviceKeyAuthentication
        name = "deviceKey"

        def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
            return {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Api-Key <key>` (or the header `X-Device-Key: <key>`).",
            }
except ImportError:  # pragma: no cover
    pass
