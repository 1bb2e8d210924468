"""Users, roles, profiles, organizations, the care team, sign-in sessions and the access log."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connections, models
from django.db.models import Q
from django.utils import timezone

from .preferences import validate_unit_preferences


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINICIAN = "clinician", "Clinician"
    STAFF = "staff", "Staff"


# What each role may do, as shown to clients in `auth/current-user/`.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.PATIENT: ["own_data.read", "own_data.write", "care_team.manage"],
    Role.CLINICIAN: ["own_data.read", "own_data.write", "patients.read_consented", "admin.access"],
    Role.STAFF: ["own_data.read", "own_data.write", "patients.read_all", "admin.access", "users.manage"],
}


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # Addresses are compared whole and case-insensitively, so store them lower-case.
        return (email or "").strip().lower()

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        if not email:
            raise ValueError("An email address is required.")
        fields.pop("is_staff", None)  # derived from the role
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        Profile.objects.using(self._db).create(user=user)  # every user has one
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(role=Role.STAFF, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address: patient, clinician or staff."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)
    is_active = models.BooleanField(default=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def is_staff(self) -> bool:
        """Admin access: staff, and clinicians (whose admin is scoped to their patients)."""
        return self.is_superuser or self.role in (Role.STAFF, Role.CLINICIAN)

    @property
    def is_clinician(self) -> bool:
        return self.role == Role.CLINICIAN

    @property
    def sees_all_patients(self) -> bool:
        return self.is_superuser or self.role == Role.STAFF

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(value)s is not an IANA time zone (for example Europe/Paris).",
            code="invalid_timezone",
            params={"value": value},
        )


class Sex(models.TextChoices):
    # FHIR administrative gender, so Patient resources map one to one.
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class BloodType(models.TextChoices):
    A_POS = "A+"
    A_NEG = "A-"
    B_POS = "B+"
    B_NEG = "B-"
    AB_POS = "AB+"
    AB_NEG = "AB-"
    O_POS = "O+"
    O_NEG = "O-"


class UnitSystem(models.TextChoices):
    METRIC = "metric", "Metric"
    IMPERIAL = "imperial", "Imperial"


class Profile(TimeStampedModel):
    """A user's medical profile and preferences; one per user."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="profile")
    date_of_birth = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=8, choices=Sex.choices, blank=True)
    height_cm = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(30), MaxValueValidator(275)],
    )
    blood_type = models.CharField(max_length=3, choices=BloodType.choices, blank=True)
    conditions = models.JSONField(default=list, blank=True)
    allergies = models.JSONField(default=list, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    preferred_units = models.CharField(max_length=8, choices=UnitSystem.choices, default=UnitSystem.METRIC)
    # Per metric type, a unit that wins over preferred_units in display fields: {"blood_glucose": "mmol/L"}.
    unit_preferences = models.JSONField(default=dict, blank=True, validators=[validate_unit_preferences])
    phone = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class EmergencyContact(models.Model):
    """Someone to call for the patient."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="emergency_contacts")
    name = models.CharField(max_length=150)
    relation = models.CharField(max_length=64, blank=True)
    phone = models.CharField(max_length=32)
    email = models.EmailField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.relation})" if self.relation else self.name


class OrganizationKind(models.TextChoices):
    HOSPITAL = "hospital", "Hospital"
    CLINIC = "clinic", "Clinic"


class Organization(TimeStampedModel):
    """A hospital or clinic that clinicians belong to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=OrganizationKind.choices, default=OrganizationKind.CLINIC)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ClinicianProfile(TimeStampedModel):
    """What a clinician practises and where."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="clinician_profile")
    specialty = models.CharField(max_length=100, blank=True)
    license_number = models.CharField(max_length=64, blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.SET_NULL, null=True, blank=True, related_name="clinicians"
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.specialty or 'clinician'})"


def _invitation_expiry():
    return timezone.now() + timedelta(days=7)


class ClinicianInvitation(models.Model):
    """A link that lets a clinician register; created by staff in the admin."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, null=True, blank=True)
    specialty = models.CharField(max_length=100, blank=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class Scope(models.TextChoices):
    METRICS = "metrics", "Health metrics"
    MEDICATIONS = "medications", "Medications"
    APPOINTMENTS = "appointments", "Appointments"


class CareTeamGrantQuerySet(models.QuerySet["CareTeamGrant"]):
    def active(self) -> CareTeamGrantQuerySet:
        now = timezone.now()
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)

    def with_scope(self, scope: str) -> CareTeamGrantQuerySet:
        if connections[self.db].vendor == "postgresql":
            return self.filter(scopes__contains=[scope])
        # SQLite has no JSON containment; there the list is stored as JSON text.
        return self.filter(scopes__icontains=f'"{scope}"')

    def for_user(self, user: User) -> CareTeamGrantQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(patient=user) | Q(clinician=user))


class CareTeamGrant(TimeStampedModel):
    """A patient's consent that lets a clinician see some of their data, until revoked or expired."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="care_team_grants")
    clinician = models.ForeignKey(User, on_delete=models.CASCADE, related_name="patient_grants")
    scopes = models.JSONField(default=list)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = CareTeamGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "clinician"],
                condition=Q(revoked_at__isnull=True),
                name="one_open_grant_per_patient_and_clinician",
            ),
            models.CheckConstraint(condition=~Q(patient=models.F("clinician")), name="grant_not_to_self"),
        ]
        indexes = [
            # visible_patients(): the open grants a clinician holds.
            models.Index(fields=["clinician", "revoked_at"], name="grant_clinician_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} → {self.clinician}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class SessionEnd(models.TextChoices):
    LOGOUT = "logout", "Logged out"
    LOGOUT_EVERYWHERE = "logout_everywhere", "Logged out everywhere"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET = "password_reset", "Password reset"
    TOKEN_REUSE = "token_reuse", "A spent refresh token was reused"


class AuthSessionQuerySet(models.QuerySet["AuthSession"]):
    def live(self) -> AuthSessionQuerySet:
        return self.filter(ended_at__isnull=True)


class AuthSession(models.Model):
    """One sign-in (a device): the family of refresh tokens rotated from it and the access tokens they made.

    Every token carries the session's id; once `ended_at` is set, all of them are refused at once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    created_at = models.DateTimeField(default=timezone.now)
    # When its newest refresh token expires: after that nothing of it can be used, and the row is flushed.
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=SessionEnd.choices, blank=True)

    objects = AuthSessionQuerySet.as_manager()

    class Meta:
        verbose_name = "sign-in session"
        ordering = ["-created_at"]
        indexes = [
            # flush_expired_tokens(): the sessions past their last refresh token.
            models.Index(fields=["expires_at"], name="authsession_expires_idx"),
        ]

    def __str__(self) -> str:
        return str(self.pk)

    @property
    def state(self) -> str:
        if self.ended_at is not None:
            return "ended"
        return "expired" if self.expires_at <= timezone.now() else "live"


class IssuedRefreshToken(models.Model):
    """A refresh token we issued, kept as its id and SHA-256 only: never the token itself.

    Each one is spent once by rotation (`spent_at`); its successor's ids derive from its own
    (accounts.tokens.successor_jtis). Kept until it expires, so a replay is recognised.
    """

    session = models.ForeignKey(AuthSession, on_delete=models.CASCADE, related_name="refresh_tokens")
    jti = models.CharField(max_length=255, unique=True)
    token_hash = models.CharField(max_length=64)  # hex SHA-256 of the token string
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    spent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # flush_expired_tokens(): the refresh tokens past their expiry.
            models.Index(fields=["expires_at"], name="refreshtoken_expires_idx"),
        ]

    def __str__(self) -> str:
        return self.jti


class EmailKind(models.TextChoices):
    VERIFICATION = "verification", "Email verification"
    PASSWORD_RESET = "password_reset", "Password reset"
    CLINICIAN_INVITATION = "clinician_invitation", "Clinician invitation"


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"  # nothing left to say: verified, deactivated or accepted since
    FAILED = "failed", "Failed"


class OutboxEmail(models.Model):
    """An email owed to someone, written in the transaction of the request that owes it and sent by a worker.

    It holds no secret: the link's token is minted when the email is sent, so the row says only
    what to send to whom. A worker claims it by conditional update (one sender per row); the
    sweeper hands pending rows to a worker again when the broker was down or a send failed.
    """

    kind = models.CharField(max_length=32, choices=EmailKind.choices)
    # No index of its own: outboxemail_user_kind_idx starts with it.
    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False)
    invitation = models.ForeignKey(
        ClinicianInvitation, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=EmailStatus.choices, default=EmailStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Pending: when the sweeper may hand it to a worker (later after each failed send).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=EmailKind.CLINICIAN_INVITATION, invitation__isnull=False)
                | (~Q(kind=EmailKind.CLINICIAN_INVITATION) & Q(user__isnull=False)),
                name="outboxemail_has_recipient",
            ),
        ]
        indexes = [
            # The sweeper: emails still to send (pending, or sending but abandoned), oldest first.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="outboxemail_unsent_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
            # The per-address reset limit: a user's reset emails of the last hour.
            models.Index(fields=["user", "kind", "-created_at"], name="outboxemail_user_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} email ({self.status})"


class AccessAction(models.TextChoices):
    LIST = "list", "List"
    READ = "read", "Read"
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    REFUSED = "refused", "Refused write"  # someone else's write to the patient's data, answered 404 or 403


class AppendOnlyQuerySet(models.QuerySet["AccessLog"]):
    def update(self, **kwargs):
        raise PermissionError("The access log is append-only.")

    def delete(self):
        raise PermissionError("The access log is append-only.")


class AccessLog(models.Model):
    """Who read or wrote whose data, when, from where. Append-only (a database trigger on PostgreSQL)."""

    # No foreign-key constraints: the log outlives the accounts it names.
    actor = models.ForeignKey(User, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+")
    patient = models.ForeignKey(User, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+")
    resource = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=8, choices=AccessAction.choices)
    at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # A patient's access history, newest first.
            models.Index(fields=["patient", "-at"], name="accesslog_patient_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id} {self.action} {self.resource} of {self.patient_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("The access log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The access log is append-only.")


class ChangeOp(models.TextChoices):
    INSERT = "insert", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"


class Change(models.Model):
    """One row changed in a collection a mobile app mirrors offline: the feed behind `changes/?since=`.

    Written by database triggers on the tracked tables (accounts/sync.py), so bulk inserts, updates and
    deletes that bypass the ORM's signals are in it too. `txid` is the writing transaction's id: the feed
    answers a change only once every transaction that could still add an earlier one has ended (see sync.py).
    `user_id` is the owner's id without a foreign key, so a tombstone outlives a deleted user's rows until
    the retention sweep (SYNC_CHANGE_RETENTION_DAYS) removes it.
    """

    id = models.BigAutoField(primary_key=True)
    user_id = models.UUIDField()
    collection = models.CharField(max_length=32)
    object_id = models.UUIDField()
    op = models.CharField(max_length=8, choices=ChangeOp.choices)
    txid = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user_id", "collection", "txid", "id"], name="accounts_change_feed")]

    def __str__(self) -> str:
        return f"{self.collection} {self.object_id} {self.op}"
