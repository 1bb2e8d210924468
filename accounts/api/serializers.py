from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.fields import get_error_detail

from config.inputs import DateTimeField, ModelSerializer

from ..models import (
    ROLE_PERMISSIONS,
    AccessLog,
    CareTeamGrant,
    EmergencyContact,
    Profile,
    Scope,
    User,
)
from ..preferences import clean_unit_preferences
from ..services import TokenRefused, rotate_refresh_token

# --- Users and profiles -------------------------------------------------------------


class EmergencyContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmergencyContact
        fields = ("name", "relation", "phone", "email")

    def validate(self, attrs: dict) -> dict:
        # Contacts are replaced whole, so a PATCH (partial) must still give each one fully.
        missing = {name: "This field is required." for name in ("name", "phone") if not attrs.get(name)}
        if missing:
            raise serializers.ValidationError(missing, code="required")
        return attrs


class ProfileSerializer(ModelSerializer):
    conditions = serializers.ListField(child=serializers.CharField(max_length=200), max_length=50, required=False)
    allergies = serializers.ListField(child=serializers.CharField(max_length=200), max_length=50, required=False)
    emergency_contacts = EmergencyContactSerializer(many=True, required=False, max_length=5)
    unit_preferences = serializers.DictField(
        child=serializers.CharField(max_length=32),
        required=False,
        help_text='Per metric type, the unit its display fields use, over preferred_units: {"blood_glucose": '
        '"mmol/L"}. Types by code or label; units by UCUM code or label (see display_units in the catalog).',
    )

    class Meta:
        model = Profile
        fields = (
            "date_of_birth",
            "sex",
            "height_cm",
            "blood_type",
            "conditions",
            "allergies",
            "timezone",
            "preferred_units",
            "unit_preferences",
            "phone",
            "emergency_contacts",
        )

    def validate_unit_preferences(self, value: dict) -> dict:
        try:
            return clean_unit_preferences(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(get_error_detail(exc)) from None

    def validate_date_of_birth(self, value):
        from django.utils import timezone

        if value is not None and value > timezone.localdate():
            raise serializers.ValidationError("The date of birth cannot be in the future.")
        return value


class UserSerializer(serializers.ModelSerializer):
    email_verified = serializers.BooleanField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ("id", "email", "first_name", "last_name", "role", "email_verified", "is_staff", "date_joined")
        read_only_fields = fields


class UserWithProfileSerializer(serializers.ModelSerializer):
    """The user and their profile; names and profile are writable, the rest is not."""

    email_verified = serializers.BooleanField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    profile = ProfileSerializer(required=False)

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "email_verified",
            "is_staff",
            "date_joined",
            "profile",
        )
        read_only_fields = ("id", "email", "role", "email_verified", "is_staff", "date_joined")


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AuthResultSerializer(serializers.Serializer):
    user = UserWithProfileSerializer()
    tokens = TokenPairSerializer()


class TokensResultSerializer(serializers.Serializer):
    tokens = TokenPairSerializer()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _check_new_password(attrs: dict, *, password_key: str, confirm_key: str, user: User | None) -> None:
    if attrs[password_key] != attrs[confirm_key]:
        raise serializers.ValidationError({confirm_key: "The two passwords do not match."})
    try:
        validate_password(attrs[password_key], user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({password_key: get_error_detail(exc)}) from None


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, trim_whitespace=False)
    password_confirm = serializers.CharField(write_only=True, trim_whitespace=False)
    first_name = serializers.CharField(max_length=150, required=False, default="")
    last_name = serializers.CharField(max_length=150, required=False, default="")
    profile = ProfileSerializer(required=False)
    invitation = serializers.CharField(
        required=False, help_text="A clinician's invitation token, from the emailed link."
    )

    def validate(self, attrs: dict) -> dict:
        candidate = User(email=attrs["email"], first_name=attrs["first_name"], last_name=attrs["last_name"])
        _check_new_password(attrs, password_key="password", confirm_key="password_confirm", user=candidate)
        return attrs


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, trim_whitespace=False)

    def validate_email(self, value: str) -> str:
        return User.objects.normalize_email(value)


class VerifyEmailSerializer(serializers.Serializer):
    token = serializers.CharField()


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField(required=False, help_text="The session to end. Leave it out to end every session.")


class ChangePasswordSerializer(serializers.Serializer):
    old_password = serializers.CharField(write_only=True, trim_whitespace=False)
    new_password = serializers.CharField(write_only=True, trim_whitespace=False)
    new_password_confirm = serializers.CharField(write_only=True, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        user = self.context["request"].user
        _check_new_password(attrs, password_key="new_password", confirm_key="new_password_confirm", user=user)
        return attrs


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.EmailField()


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField()
    token = serializers.CharField()
    new_password = serializers.CharField(write_only=True, trim_whitespace=False)
    new_password_confirm = serializers.CharField(write_only=True, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        _check_new_password(attrs, password_key="new_password", confirm_key="new_password_confirm", user=None)
        return attrs


class RefreshSerializer(serializers.Serializer):
    """Rotation with reuse detection (accounts.services.rotate_refresh_token).

    Each refresh token is spent once for a new pair; sent again within the grace window it
    answers that same pair. Sent again after it, two parties hold copies of it, so every
    session of that user ends.
    """

    refresh = serializers.CharField()
    access = serializers.CharField(read_only=True)

    def validate(self, attrs: dict) -> dict:
        try:
            return rotate_refresh_token(refresh=attrs["refresh"])
        except TokenRefused as refused:
            raise AuthenticationFailed(refused.detail, code=refused.code) from None


class RefreshResultSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RoleSerializer(serializers.Serializer):
    name = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())


class CurrentUserSerializer(serializers.Serializer):
    """The shape existing mobile clients read: top-level id and email, then the details."""

    id = serializers.UUIDField(source="pk")
    email = serializers.EmailField()
    authUser = UserSerializer(source="*")  # noqa: N815 - the clients' field name
    userProfile = serializers.SerializerMethodField()  # noqa: N815
    role = serializers.SerializerMethodField()

    @extend_schema_field(ProfileSerializer)
    def get_userProfile(self, user: User) -> dict:  # noqa: N802
        return ProfileSerializer(user.profile).data

    @extend_schema_field(RoleSerializer)
    def get_role(self, user: User) -> dict:
        return {"name": user.role, "permissions": ROLE_PERMISSIONS[user.role]}


# --- The care team ------------------------------------------------------------------


class PersonSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="get_full_name")

    class Meta:
        model = User
        fields = ("id", "email", "name")


class CareTeamGrantSerializer(serializers.ModelSerializer):
    patient = PersonSerializer(read_only=True)
    clinician = PersonSerializer(read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), read_only=True)
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)

    class Meta:
        model = CareTeamGrant
        fields = ("id", "patient", "clinician", "scopes", "granted_at", "expires_at", "revoked_at", "status")
        read_only_fields = fields


class CareTeamGrantCreateSerializer(serializers.Serializer):
    clinician_email = serializers.EmailField()
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=len(Scope.choices)
    )
    expires_at = DateTimeField(required=False, allow_null=True, default=None)


class AccessLogSerializer(serializers.ModelSerializer):
    actor = PersonSerializer(read_only=True, allow_null=True, help_text="Who read or changed the data.")
    patient = serializers.UUIDField(source="patient_id", read_only=True, help_text="Whose record it was.")
    resource = serializers.CharField(read_only=True, help_text="Which part of the record (reading, healthalert, …).")
    object_id = serializers.CharField(read_only=True, help_text="The object read, or blank for a list page.")
    ip = serializers.IPAddressField(read_only=True, allow_null=True, help_text="Where from.")

    class Meta:
        model = AccessLog
        fields = ("id", "at", "actor", "patient", "action", "resource", "object_id", "ip", "request_id")
        read_only_fields = fields
