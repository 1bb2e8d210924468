"""Device authentication: `Authorization: Api-Key <key>` or `X-Device-Key: <key>`.

A device is not a person: request.user is a DevicePrincipal, which no people's endpoint
accepts (they authenticate JWTs only), and request.auth is the Device.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import Device, DeviceAPIKey


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


# Every device request runs this lookup. The ORM's select_related().get() measured 1.0-1.2 ms
# here against 0.24 ms for the same SQL, so it is written out; the key rows themselves are
# still made and revoked through djangorestframework-api-key's model.
_KEY_SQL = """
SELECT k.hashed_key, k.expiry_date, d.id, d.owner_id, d.is_active, d.name
FROM iot_devices_deviceapikey k JOIN iot_devices_device d ON d.id = k.device_id
WHERE k.prefix = %s AND NOT k.revoked
"""
_DEVICE_FIELDS = ["id", "owner_id", "is_active", "name"]  # the rest load on first use


def _usable_key(key: str):  # noqa: ANN202
    """(device, expiry) for a valid, unrevoked key; None otherwise."""
    prefix = key.partition(".")[0]
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL, [prefix])
        row = cursor.fetchone()
    if row is None or not DeviceAPIKey.objects.key_generator.verify(key, row[0]):
        return None
    loaded = dict(zip(_DEVICE_FIELDS, row[2:], strict=True))
    # from_db takes the values in the model's field order, whatever order field_names has.
    values = [loaded[f.attname] for f in Device._meta.concrete_fields if f.attname in loaded]
    return Device.from_db(connection.alias, _DEVICE_FIELDS, values), row[1]


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
        found = _usable_key(key)
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked device key.", code="device_key_invalid")
        device, expiry = found
        if (expiry is not None and expiry < timezone.now()) or not device.is_active:
            raise exceptions.AuthenticationFailed("This device key is not active.", code="device_inactive")
        return DevicePrincipal(device), device

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
