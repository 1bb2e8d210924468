"""Writes and rules for accounts: sign-up, sessions, passwords, profiles, the care team, the access log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from config.errors import ConflictError, field_error

from .models import (
    AccessAction,
    AccessLog,
    CareTeamGrant,
    ClinicianInvitation,
    ClinicianProfile,
    EmergencyContact,
    Profile,
    Role,
    Scope,
    SpentRefreshToken,
    User,
)
from .tokens import (
    issue_tokens,
    make_email_verification_token,
    make_invitation_token,
    password_reset_token,
    read_email_verification_token,
    read_invitation_token,
)

# --- The access log ---------------------------------------------------------------


def record_access(
    *,
    actor: User,
    entries: Iterable[tuple[Any, str]],
    resource: str,
    action: str,
    ip: str | None,
    request_id: str,
) -> None:
    """Append one access-log row per (patient id, object id) entry, in one query."""
    now = timezone.now()
    AccessLog.objects.bulk_create(
        AccessLog(
            actor=actor,
            patient_id=patient_id,
            resource=resource,
            object_id=object_id,
            action=action,
            at=now,
            ip=ip,
            request_id=request_id,
        )
        for patient_id, object_id in entries
    )


def record_refused_write(
    *,
    actor: User,
    patients: QuerySet,
    resource: str,
    object_id: str,
    ip: str | None,
    request_id: str,
) -> None:
    """Append a `refused` row naming the patient of the target, when there is one: a single INSERT ... SELECT.

    `patients` selects the target's patient id (one column) where it is someone else's. The statement is the
    same whether or not the target exists, so the refusal answers in the same time for a real id and a made-up
    one, and writes a row only for the real one.
    """
    sql, params = patients.query.sql_with_params()
    fields = {name: AccessLog._meta.get_field(name) for name in ("actor", "resource", "object_id", "action", "at")}
    fields |= {name: AccessLog._meta.get_field(name) for name in ("ip", "request_id", "patient")}
    values = {
        "actor": actor.pk,
        "resource": resource,
        "object_id": object_id,
        "action": AccessAction.REFUSED,
        "at": timezone.now(),
        "ip": ip,
        "request_id": request_id,
    }
    columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in [*values, "patient"])
    prepared = [fields[name].get_db_prep_save(value, connection) for name, value in values.items()]
    placeholders = ", ".join(["%s"] * len(prepared))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(AccessLog._meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
            f"SELECT {placeholders}, target.refused_patient_id FROM ({sql}) target",
            [*prepared, *params],
        )


# --- Users --------------------------------------------------------------------------


@transaction.atomic
def create_user(
    *,
    email: str,
    password: str | None,
    role: str = Role.PATIENT,
    first_name: str = "",
    last_name: str = "",
    profile: dict[str, Any] | None = None,
    emergency_contacts: list[dict[str, Any]] | None = None,
    clinician: dict[str, Any] | None = None,
    email_verified: bool = False,
) -> User:
    """Create a user with a profile (and a clinician profile for clinicians)."""
    email = User.objects.normalize_email(email)
    if User.objects.filter(email=email).exists():
        raise field_error("email", "A user with this email already exists.", code="unique")
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email,
                password,
                role=role,
                first_name=first_name,
                last_name=last_name,
                is_superuser=role == Role.STAFF,
                email_verified_at=timezone.now() if email_verified else None,
            )
    except IntegrityError:  # a concurrent sign-up with the same address
        raise field_error("email", "A user with this email already exists.", code="unique") from None
    if profile:
        for name, value in profile.items():
            setattr(user.profile, name, value)
        user.profile.full_clean()
        user.profile.save()
    EmergencyContact.objects.bulk_create(
        EmergencyContact(profile=user.profile, **contact) for contact in emergency_contacts or []
    )
    if role == Role.CLINICIAN:
        ClinicianProfile.objects.create(user=user, **(clinician or {}))
    return user


@transaction.atomic
def register_user(
    *,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    profile: dict[str, Any] | None = None,
    emergency_contacts: list[dict[str, Any]] | None = None,
    invitation_token: str | None = None,
) -> User:
    """Self sign-up: a patient, or a clinician holding an invitation for this address."""
    if not invitation_token:
        user = create_user(
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
            profile=profile,
            emergency_contacts=emergency_contacts,
        )
        from .tasks import send_verification_email_task

        transaction.on_commit(lambda: send_verification_email_task.delay(str(user.pk)))
        return user

    invitation_id = read_invitation_token(invitation_token)
    invitation = (
        ClinicianInvitation.objects.select_for_update().filter(pk=invitation_id).first() if invitation_id else None
    )
    if invitation is None or not invitation.is_usable:
        raise field_error("invitation", "This invitation is invalid or has expired.", code="invalid")
    if User.objects.normalize_email(email) != User.objects.normalize_email(invitation.email):
        raise field_error("email", "This invitation is for another address.", code="invalid")
    user = create_user(
        email=email,
        password=password,
        role=Role.CLINICIAN,
        first_name=first_name,
        last_name=last_name,
        profile=profile,
        emergency_contacts=emergency_contacts,
        clinician={"specialty": invitation.specialty, "organization": invitation.organization},
        email_verified=True,  # the invitation link proved the address
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    return user


def send_verification_email(*, user: User) -> None:
    token = make_email_verification_token(user)
    send_mail(
        subject="Confirm your OpenVitals email address",
        message=(
            f"Hello {user.first_name or user.email},\n\n"
            f"Confirm your address by opening this link:\n"
            f"{settings.FRONTEND_URL}/verify-email?token={token}\n\n"
            f"Or send this token to POST /api/v1/auth/verify-email/:\n{token}\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def send_clinician_invitation(*, invitation: ClinicianInvitation) -> None:
    token = make_invitation_token(invitation.pk)
    send_mail(
        subject="You are invited to OpenVitals",
        message=(
            f"You have been invited to join OpenVitals as a clinician"
            f"{' at ' + invitation.organization.name if invitation.organization else ''}.\n\n"
            f"Register with this link before {invitation.expires_at:%Y-%m-%d}:\n"
            f"{settings.FRONTEND_URL}/register?invitation={token}\n\n"
            f'Or POST /api/v1/auth/register/ with "invitation": "{token}".\n'
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def verify_email(*, token: str) -> User:
    payload = read_email_verification_token(token)
    user = User.objects.filter(pk=payload["user"]).first() if payload else None
    if user is None or user.email != payload["email"]:
        raise field_error("token", "This link is invalid or has expired.", code="invalid")
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


@transaction.atomic
def update_profile(
    *,
    user: User,
    user_fields: dict[str, Any],
    profile_fields: dict[str, Any],
    emergency_contacts: list[dict[str, Any]] | None,
) -> User:
    """Change names, profile fields and (when given) replace the emergency contacts."""
    for name, value in user_fields.items():
        setattr(user, name, value)
    if user_fields:
        user.save(update_fields=list(user_fields))
    profile, _ = Profile.objects.get_or_create(user=user)
    for name, value in profile_fields.items():
        setattr(profile, name, value)
    profile.full_clean()
    profile.save()
    if emergency_contacts is not None:
        profile.emergency_contacts.all().delete()
        EmergencyContact.objects.bulk_create(EmergencyContact(profile=profile, **c) for c in emergency_contacts)
    return user


# --- Sessions and passwords -----------------------------------------------------------


@transaction.atomic
def end_all_sessions(*, user: User) -> None:
    """Refuse every token issued so far: bump the session version and blacklist open refresh tokens."""
    User.objects.filter(pk=user.pk).update(session_version=F("session_version") + 1)
    user.refresh_from_db(fields=["session_version"])
    open_tokens = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    BlacklistedToken.objects.bulk_create((BlacklistedToken(token=t) for t in open_tokens), ignore_conflicts=True)


def end_session(*, user: User, refresh: str) -> None:
    """Blacklist one refresh token of the user's: that device's session ends."""
    invalid = field_error("refresh", "This is not a valid refresh token.", code="token_not_valid")
    try:
        payload = token_backend.decode(refresh, verify=True)  # signature and expiry
    except TokenBackendError:
        raise invalid from None
    if payload.get("token_type") != "refresh" or payload.get("user_id") != str(user.pk):
        raise invalid
    RefreshToken(refresh, verify=False).blacklist()  # records it as outstanding if it was not


def record_spent_refresh_token(*, user: User, payload: dict[str, Any]) -> None:
    SpentRefreshToken.objects.get_or_create(
        jti=payload["jti"],
        defaults={"user": user, "expires_at": datetime.fromtimestamp(payload["exp"], tz=UTC)},
    )


@transaction.atomic
def change_password(*, user: User, old_password: str, new_password: str) -> dict[str, str]:
    """Set a new password, end every other session and return tokens for this one."""
    if not user.check_password(old_password):
        raise field_error("old_password", "The current password is wrong.", code="invalid")
    validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    end_all_sessions(user=user)
    return issue_tokens(user)


def request_password_reset(*, email: str) -> None:
    """Email a reset link if the address belongs to an active user; say nothing either way."""
    user = User.objects.filter(email=User.objects.normalize_email(email), is_active=True).first()
    if user is not None:
        from .tasks import send_password_reset_email_task

        transaction.on_commit(lambda: send_password_reset_email_task.delay(str(user.pk)))


def send_password_reset_email(*, user: User) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = password_reset_token.make_token(user)
    send_mail(
        subject="Reset your OpenVitals password",
        message=(
            f"Someone asked to reset the password of {user.email}. If it was you, open:\n"
            f"{settings.FRONTEND_URL}/reset-password?uid={uid}&token={token}\n\n"
            f"Or POST /api/v1/auth/password/reset/confirm/ with uid={uid} and token={token}.\n"
            f"The link works once, for {settings.PASSWORD_RESET_TIMEOUT // 60} minutes. "
            f"If it was not you, ignore this email.\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


@transaction.atomic
def reset_password(*, uid: str, token: str, new_password: str) -> User:
    """Set the password from an emailed token (single use, expiring) and end every session."""
    try:
        user = User.objects.filter(pk=force_str(urlsafe_base64_decode(uid)), is_active=True).first()
    except (ValueError, TypeError, ValidationError):
        user = None
    if user is None or not password_reset_token.check_token(user, token):
        raise field_error("token", "This link is invalid or has expired.", code="invalid")
    validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    end_all_sessions(user=user)
    from axes.utils import reset as reset_lockouts

    reset_lockouts(username=user.email)
    return user


# --- The care team ------------------------------------------------------------------


@transaction.atomic
def grant_care_team_access(
    *, patient: User, clinician_email: str, scopes: Iterable[str], expires_at: datetime | None
) -> CareTeamGrant:
    """A patient lets a clinician see the named parts of their data, until revoked or expired."""
    clinician = User.objects.filter(
        email=User.objects.normalize_email(clinician_email), role=Role.CLINICIAN, is_active=True
    ).first()
    if clinician is None:
        raise field_error("clinician_email", "No clinician has this email.", code="not_found")
    if clinician.pk == patient.pk:
        raise field_error("clinician_email", "You cannot grant access to yourself.", code="invalid")
    if expires_at is not None and expires_at <= timezone.now():
        raise field_error("expires_at", "The expiry must be in the future.", code="invalid")
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= set(Scope.values):
        raise field_error("scopes", "Choose one or more scopes.", code="invalid")
    # An expired grant still holds the pair's open slot: close it so a new one can start.
    CareTeamGrant.objects.filter(
        patient=patient, clinician=clinician, revoked_at__isnull=True, expires_at__lte=timezone.now()
    ).update(revoked_at=timezone.now())
    try:
        with transaction.atomic():
            return CareTeamGrant.objects.create(
                patient=patient, clinician=clinician, scopes=scopes, expires_at=expires_at
            )
    except IntegrityError:
        raise ConflictError(
            "This clinician already has access; revoke it first to change it.", code="already_granted"
        ) from None


def revoke_care_team_grant(*, grant: CareTeamGrant, revoked_by: User) -> CareTeamGrant:
    """Only the patient revokes; it takes effect at once. Revoking twice changes nothing."""
    if grant.patient_id != revoked_by.pk:
        raise PermissionDenied("Only the patient can revoke a care-team grant.")
    if grant.revoked_at is None:
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at", "updated_at"])
    return grant


def flush_expired_tokens() -> int:
    """Delete expired refresh-token records (and their blacklist rows); return how many."""
    now = timezone.now()
    SpentRefreshToken.objects.filter(expires_at__lte=now).delete()
    deleted, _ = OutstandingToken.objects.filter(expires_at__lte=now).delete()
    return deleted
