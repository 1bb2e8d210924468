"""Writes and rules for accounts: sign-up, sessions, passwords, profiles, the care team, the access log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend

from config.errors import ConflictError, field_error
from config.sweeps import enqueue_each

from . import events
from .models import (
    AccessAction,
    AccessLog,
    AuthSession,
    CareTeamGrant,
    ClinicianInvitation,
    ClinicianProfile,
    EmailKind,
    EmailStatus,
    EmergencyContact,
    IssuedRefreshToken,
    OutboxEmail,
    Profile,
    Role,
    Scope,
    SessionEnd,
    User,
)
from .tokens import (
    issue_tokens,
    make_email_verification_token,
    make_invitation_token,
    mint_pair,
    password_reset_token,
    read_email_verification_token,
    read_invitation_token,
    record_refresh_token,
    refresh_lifetime,
    successor_jtis,
    token_hash,
)

logger = structlog.get_logger(__name__)

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
        queue_email(kind=EmailKind.VERIFICATION, user=user)
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


def send_clinician_invitation(*, invitation: ClinicianInvitation) -> OutboxEmail:
    """Email the invitation's registration link (through the outbox, like every email)."""
    return queue_email(kind=EmailKind.CLINICIAN_INVITATION, invitation=invitation)


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


class TokenRefused(Exception):
    """A refresh token that gives no new pair (the API answers 401 with `code`)."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


def _read_refresh_token(refresh: str) -> dict[str, Any]:
    try:
        payload = token_backend.decode(refresh, verify=True)  # signature and expiry
    except TokenBackendError:
        raise TokenRefused("The refresh token is invalid or expired.", "token_not_valid") from None
    jti = payload.get(api_settings.JTI_CLAIM)
    if payload.get(api_settings.TOKEN_TYPE_CLAIM) != "refresh" or not isinstance(jti, str):
        raise TokenRefused("This is not a refresh token.", "token_not_valid")
    return payload


def _issued_refresh_token(refresh: str, payload: dict[str, Any], *, lock: bool) -> IssuedRefreshToken | None:
    """The row of a refresh token we issued, found by its id and checked against its hash."""
    rows = IssuedRefreshToken.objects.select_related("session__user").filter(jti=payload[api_settings.JTI_CLAIM])
    if lock:
        rows = rows.select_for_update(of=("self",))
    record = rows.first()
    if (
        record is None
        or not constant_time_compare(record.token_hash, token_hash(refresh))
        or str(record.session.user_id) != payload.get(api_settings.USER_ID_CLAIM)
    ):
        return None
    return record


def _successor_pair(record: IssuedRefreshToken, *, first_answer: bool) -> dict[str, str] | None:
    """The pair that replaced a spent refresh token: minted and recorded on the spend, re-minted on a retry.

    A retry gets it again only within the grace window and while its refresh token is unused: a
    client that received the pair has no reason to send the old token again. Otherwise: None.
    """
    refresh_jti, access_jti = successor_jtis(record.jti)
    session, spent_at = record.session, record.spent_at
    pair = mint_pair(session=session, refresh_jti=refresh_jti, access_jti=access_jti, issued_at=spent_at)
    if first_answer:
        record_refresh_token(session=session, refresh=pair["refresh"], jti=refresh_jti, issued_at=spent_at)
        AuthSession.objects.filter(pk=session.pk).update(expires_at=spent_at + refresh_lifetime())
        return pair
    if timezone.now() - spent_at >= timedelta(seconds=settings.JWT_REFRESH_GRACE_SECONDS):
        return None
    successor = IssuedRefreshToken.objects.filter(jti=refresh_jti).first()
    if successor is None or successor.spent_at is not None:
        return None
    # A hash that differs means the signing key changed since the spend: the old pair cannot be made again.
    return pair if constant_time_compare(successor.token_hash, token_hash(pair["refresh"])) else None


def rotate_refresh_token(*, refresh: str) -> dict[str, str]:
    """Spend a refresh token for its session's next access and refresh token.

    The spend holds the token's row lock, so of N concurrent requests with one token exactly one
    spends it; the others wait, then find it spent a moment ago and answer the same pair (the
    grace window, JWT_REFRESH_GRACE_SECONDS). After the window, a spent token means two parties
    hold copies of it: every session of the user ends. A token of an ended session is only refused.
    """
    payload = _read_refresh_token(refresh)
    with transaction.atomic():
        record = _issued_refresh_token(refresh, payload, lock=True)
        if record is None:
            raise TokenRefused("The refresh token is invalid or expired.", "token_not_valid")
        session = record.session
        if session.ended_at is not None or not session.user.is_active:
            raise TokenRefused("This session has ended; sign in again.", "session_ended")
        if record.spent_at is None:
            record.spent_at = timezone.now()
            record.save(update_fields=["spent_at"])
            return _successor_pair(record, first_answer=True)
        pair = _successor_pair(record, first_answer=False)
        if pair is not None:
            return pair
        end_all_sessions(user=session.user, reason=SessionEnd.TOKEN_REUSE)  # committed before the 401
    raise TokenRefused("This refresh token was already used; every session has been ended.", "token_reused")


def end_all_sessions(*, user: User, reason: str = SessionEnd.LOGOUT_EVERYWHERE) -> None:
    """End every session of the user at once: their refresh and access tokens are all refused from now on.

    The user's row lock comes first, so two requests ending the same user's sessions at once (reuse
    seen on two sessions) take turns instead of locking the session rows in opposite orders.
    """
    with transaction.atomic():
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        AuthSession.objects.live().filter(user=user).update(ended_at=timezone.now(), end_reason=reason)


def end_session(*, user: User, refresh: str) -> None:
    """Log out one device: the session of this refresh token of the user's ends, its access tokens with it."""
    invalid = field_error("refresh", "This is not a valid refresh token.", code="token_not_valid")
    try:
        payload = _read_refresh_token(refresh)
    except TokenRefused:
        raise invalid from None
    record = _issued_refresh_token(refresh, payload, lock=False)
    if record is None or record.session.user_id != user.pk:
        raise invalid
    AuthSession.objects.live().filter(pk=record.session_id).update(
        ended_at=timezone.now(), end_reason=SessionEnd.LOGOUT
    )


@transaction.atomic
def change_password(*, user: User, old_password: str, new_password: str) -> dict[str, str]:
    """Set a new password, end every other session and return tokens for this one."""
    if not user.check_password(old_password):
        raise field_error("old_password", "The current password is wrong.", code="invalid")
    validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    end_all_sessions(user=user, reason=SessionEnd.PASSWORD_CHANGED)
    return issue_tokens(user)


@transaction.atomic
def request_password_reset(*, email: str) -> None:
    """Email a reset link if the address belongs to an active user; say nothing either way.

    At most PASSWORD_RESET_EMAILS_PER_HOUR reset emails per account an hour, counted from the
    outbox in the database (so the limit holds with the cache down); beyond it nothing is sent,
    and the caller answers exactly as for any other address.
    """
    user = (
        User.objects.select_for_update()  # two requests at once cannot both pass the count
        .filter(email=User.objects.normalize_email(email), is_active=True)
        .first()
    )
    if user is None:
        return
    recent = OutboxEmail.objects.filter(
        user=user, kind=EmailKind.PASSWORD_RESET, created_at__gte=timezone.now() - timedelta(hours=1)
    ).count()
    if recent >= settings.PASSWORD_RESET_EMAILS_PER_HOUR:
        logger.info("password_reset_email_limited", user_id=str(user.pk), last_hour=recent)
        return
    queue_email(kind=EmailKind.PASSWORD_RESET, user=user)


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
    end_all_sessions(user=user, reason=SessionEnd.PASSWORD_RESET)
    from axes.utils import reset as reset_lockouts

    reset_lockouts(username=user.email)
    return user


# --- Emails: the outbox ----------------------------------------------------------------

# A send that fails is tried again by the sweeper after 1, 2, 4, ... minutes (at most an hour
# apart); after this many attempts (about four hours of failures) the email ends `failed`.
EMAIL_MAX_ATTEMPTS = 10


def _email_stale_before(now: datetime) -> datetime:
    """A `sending` email claimed before this was abandoned: no task runs past the hard time limit."""
    return now - timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)


def queue_email(*, kind: str, user: User | None = None, invitation: ClinicianInvitation | None = None) -> OutboxEmail:
    """Owe an email: a row written in the caller's transaction, handed to a worker once it commits.

    With the broker down the hand-over fails and is logged, the caller's request answers as
    usual, and the sweeper (`requeue_outbox_emails`, every minute) hands the email on later.
    """
    from .tasks import send_outbox_email_task

    email = OutboxEmail.objects.create(
        kind=kind, user=user, invitation=invitation, next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    transaction.on_commit(lambda: send_outbox_email_task.delay(str(email.pk)), robust=True)
    return email


def _claim_email(email_id: Any) -> bool:
    """Take the email for sending: pending, or sending but abandoned (the worker died). Counts an attempt."""
    now = timezone.now()
    claimable = Q(status=EmailStatus.PENDING) | Q(status=EmailStatus.SENDING, claimed_at__lt=_email_stale_before(now))
    claimed = OutboxEmail.objects.filter(claimable, pk=email_id, attempts__lt=EMAIL_MAX_ATTEMPTS).update(
        status=EmailStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if claimed == 1:
        return True
    # Abandoned on its last attempt: it never came back to say why.
    OutboxEmail.objects.filter(claimable, pk=email_id, attempts__gte=EMAIL_MAX_ATTEMPTS).update(
        status=EmailStatus.FAILED, last_error="The worker stopped while sending (killed, or over its time limit)."
    )
    return False


def send_outbox_email(*, email_id: Any) -> str | None:
    """Send one outbox email once; return its new status (None: not ours to send, already claimed or done).

    Idempotent: a conditional update claims the row first, so two workers (a redelivered
    message, the sweeper's copy) never both send it. The link is minted now, from the user's
    current state; an email with nothing left to say (verified, deactivated, accepted since)
    ends `skipped`. A failed send goes back to `pending` for the sweeper, later each time, and
    ends `failed` after EMAIL_MAX_ATTEMPTS. A worker killed between sending and recording it
    may leave the email to be sent again once it is stale: at least once, never lost.
    """
    if not _claim_email(email_id):
        return None
    email = OutboxEmail.objects.select_related("user", "invitation__organization").get(pk=email_id)
    unsent = OutboxEmail.objects.filter(pk=email.pk, status=EmailStatus.SENDING)
    message = _render_email(email)
    if message is None:
        unsent.update(status=EmailStatus.SKIPPED)
        return EmailStatus.SKIPPED
    try:
        send_mail(from_email=None, **message)
    except Exception as exc:  # SMTP refused, timed out, or a bug: keep the reason and try again later
        status = EmailStatus.FAILED if email.attempts >= EMAIL_MAX_ATTEMPTS else EmailStatus.PENDING
        delay = timedelta(minutes=min(2 ** (email.attempts - 1), 60))
        unsent.update(
            status=status, next_attempt_at=timezone.now() + delay, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        logger.warning("email_send_failed", email_id=email.pk, kind=email.kind, attempts=email.attempts, status=status)
        return status
    unsent.update(status=EmailStatus.SENT, sent_at=timezone.now(), last_error="")
    return EmailStatus.SENT


def requeue_outbox_emails(*, now: datetime | None = None) -> int:
    """Hand emails to a worker again that never reached one (the broker was down), whose send failed
    and is due again, or whose worker died mid-send. The claim makes a second copy a no-op."""
    from .tasks import send_outbox_email_task

    now = now or timezone.now()
    unsent = OutboxEmail.objects.filter(
        Q(status=EmailStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=EmailStatus.SENDING, claimed_at__lt=_email_stale_before(now))
    ).order_by("next_attempt_at")
    return enqueue_each(send_outbox_email_task, unsent.values_list("pk", flat=True), limit=1000)


def _render_email(email: OutboxEmail) -> dict[str, Any] | None:
    """The subject, body and recipient, with a freshly minted link; None when nothing is owed any more."""
    user, invitation = email.user, email.invitation
    if email.kind == EmailKind.VERIFICATION and user.is_active and user.email_verified_at is None:
        return _verification_email(user)
    if email.kind == EmailKind.PASSWORD_RESET and user.is_active:
        return _password_reset_email(user)
    if email.kind == EmailKind.CLINICIAN_INVITATION and invitation.is_usable:
        return _invitation_email(invitation)
    return None


def _verification_email(user: User) -> dict[str, Any]:
    token = make_email_verification_token(user)
    return {
        "subject": "Confirm your OpenVitals email address",
        "message": (
            f"Hello {user.first_name or user.email},\n\n"
            f"Confirm your address by opening this link:\n"
            f"{settings.FRONTEND_URL}/verify-email?token={token}\n\n"
            f"Or send this token to POST /api/v1/auth/verify-email/:\n{token}\n"
        ),
        "recipient_list": [user.email],
    }


def _password_reset_email(user: User) -> dict[str, Any]:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = password_reset_token.make_token(user)
    return {
        "subject": "Reset your OpenVitals password",
        "message": (
            f"Someone asked to reset the password of {user.email}. If it was you, open:\n"
            f"{settings.FRONTEND_URL}/reset-password?uid={uid}&token={token}\n\n"
            f"Or POST /api/v1/auth/password/reset/confirm/ with uid={uid} and token={token}.\n"
            f"The link works once, for {settings.PASSWORD_RESET_TIMEOUT // 60} minutes. "
            f"If it was not you, ignore this email.\n"
        ),
        "recipient_list": [user.email],
    }


def _invitation_email(invitation: ClinicianInvitation) -> dict[str, Any]:
    token = make_invitation_token(invitation.pk)
    return {
        "subject": "You are invited to OpenVitals",
        "message": (
            f"You have been invited to join OpenVitals as a clinician"
            f"{' at ' + invitation.organization.name if invitation.organization else ''}.\n\n"
            f"Register with this link before {invitation.expires_at:%Y-%m-%d}:\n"
            f"{settings.FRONTEND_URL}/register?invitation={token}\n\n"
            f'Or POST /api/v1/auth/register/ with "invitation": "{token}".\n'
        ),
        "recipient_list": [invitation.email],
    }


def purge_outbox_emails(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete finished outbox rows (sent, skipped, failed) older than `older_than`; return how many."""
    done = [EmailStatus.SENT, EmailStatus.SKIPPED, EmailStatus.FAILED]
    deleted, _ = OutboxEmail.objects.filter(status__in=done, created_at__lt=timezone.now() - older_than).delete()
    return deleted


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
            grant = CareTeamGrant.objects.create(
                patient=patient, clinician=clinician, scopes=scopes, expires_at=expires_at
            )
            events.emit(events.CARE_TEAM_GRANTED, grant=grant)
            return grant
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
        events.emit(events.CARE_TEAM_REVOKED, grant=grant)
    return grant


@transaction.atomic
def flush_expired_tokens() -> int:
    """Delete expired refresh-token rows, and sessions whose last refresh token expired; return how many tokens."""
    now = timezone.now()
    deleted, _ = IssuedRefreshToken.objects.filter(expires_at__lte=now).delete()
    AuthSession.objects.filter(expires_at__lte=now).delete()
    return deleted
