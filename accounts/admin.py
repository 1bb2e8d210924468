"""Admin for staff, and for clinicians scoped to their consented patients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from .api.base import log_patient_access
from .models import (
    AccessAction,
    AccessLog,
    AuthSession,
    CareTeamGrant,
    ClinicianInvitation,
    ClinicianProfile,
    EmergencyContact,
    IssuedRefreshToken,
    Organization,
    Profile,
    Scope,
    User,
)
from .selectors import visible_patients
from .services import send_clinician_invitation

_UNDECLARED = object()


def patient_id_of(obj: models.Model, patient_field: str) -> Any:
    """The id of the patient an object belongs to, along `patient_field` ("pk" when the object is the patient)."""
    if patient_field == "pk":
        return obj.pk
    *path, last = patient_field.split("__")
    for name in path:
        obj = getattr(obj, name)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id")


class PatientDataAdmin(admin.ModelAdmin):
    """The one admin base for patient data: the access rule with the model's scope, and the access log.

    Each subclass names the path to the patient (`patient_field`, "pk" when the row is the patient) and
    the consent scope that covers the model (`access_scope`; None: any scope). Then, for a clinician,
    every list, detail, history and delete page, search, date drill-down, action, autocomplete, filter of
    people and related-person choice holds only the patients that `visible_patients(user, access_scope)`
    answers; anything else is the admin's "not found". Staff see everyone. Clinicians may view, never
    delete. Every page showing another person's data writes access-log rows: one per patient on a list
    page, one on a detail page (the patient's own reads are not logged).
    """

    patient_field: str = "user"
    access_scope: Any = _UNDECLARED

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        if self.access_scope is _UNDECLARED:
            raise ImproperlyConfigured(f"{type(self).__name__} must declare access_scope (a Scope, or None).")
        super().__init__(model, admin_site)

    # --- Scope ---------------------------------------------------------------------------------

    def visible_patients(self, request: HttpRequest, scope: Any = _UNDECLARED) -> QuerySet[User]:
        return visible_patients(request.user, self.access_scope if scope is _UNDECLARED else scope)

    def scoped(self, request: HttpRequest, queryset: QuerySet, scope: Any = _UNDECLARED) -> QuerySet:
        if request.user.sees_all_patients:
            return queryset
        return queryset.filter(**{f"{self.patient_field}__in": self.visible_patients(request, scope)})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scoped(request, super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        source = self._autocomplete_source(request)
        if source is not None:  # choices for another admin's field: that admin's scope applies
            queryset = self.scoped(request, queryset, source.access_scope)
        return queryset, may_have_duplicates

    def _autocomplete_source(self, request: HttpRequest) -> PatientDataAdmin | None:
        match = request.resolver_match
        if match is None or match.url_name != "autocomplete":
            return None
        try:
            source_model = apps.get_model(request.GET["app_label"], request.GET["model_name"])
        except (KeyError, LookupError):
            return None
        source = self.admin_site._registry.get(source_model)
        return source if isinstance(source, PatientDataAdmin) else None

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):  # noqa: ANN001, ANN201
        if db_field.related_model is User and not request.user.sees_all_patients:
            kwargs["queryset"] = self.visible_patients(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Sequence:
        """Filters over a relation to people list only the people in this (scoped) list, not every user."""
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                field = self.model._meta.get_field(entry)
                if field.is_relation and field.related_model is User:
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            filters.append(entry)
        return filters

    # --- Permissions -----------------------------------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and (request.user.is_clinician or super().has_module_permission(request))

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.is_active and (request.user.is_clinician or super().has_view_permission(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return not request.user.is_clinician and super().has_delete_permission(request, obj)

    # --- The access log ------------------------------------------------------------------------

    @property
    def access_resource(self) -> str:
        return self.model._meta.model_name

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        """The change, history and delete pages all read the object here: one access-log row each."""
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            action = AccessAction.READ if request.method in ("GET", "HEAD") else AccessAction.UPDATE
            entry = (patient_id_of(obj, self.patient_field), str(obj.pk))
            log_patient_access(request, [entry], action=action, resource=self.access_resource)
        return obj

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", None) and response.context_data.get("cl")
        if changelist is not None:
            patients = dict.fromkeys(patient_id_of(obj, self.patient_field) for obj in changelist.result_list)
            entries = [(patient_id, "") for patient_id in patients if patient_id is not None]
            log_patient_access(request, entries, action=AccessAction.LIST, resource=self.access_resource)
        return response


class ReadableByClinicians:
    """An inline of a scoped page: a clinician who may open the page may read it (never change it)."""

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.is_active and (request.user.is_clinician or super().has_view_permission(request, obj))


class ProfileInline(ReadableByClinicians, admin.StackedInline):
    model = Profile
    can_delete = False


class ClinicianProfileInline(admin.StackedInline):
    model = ClinicianProfile
    can_delete = False
    autocomplete_fields = ("organization",)


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "role", "first_name", "last_name")


class UserChangeFormWithEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(PatientDataAdmin, BaseUserAdmin):
    """People. A clinician sees the patients who granted them any scope, read-only: no password hash, no reset."""

    patient_field = "pk"
    access_scope = None  # the person; their medical profile needs the metrics scope (below)
    add_form = UserCreationForm
    form = UserChangeFormWithEmail
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "role", "is_active", "email_verified_at", "date_joined")
    list_filter = ("role", "is_active", "is_superuser")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("id", "last_login", "date_joined", "email_verified_at")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "role")}),
        ("Status", {"fields": ("is_active", "is_superuser", "email_verified_at", "last_login", "date_joined")}),
        ("Permissions", {"classes": ("collapse",), "fields": ("groups", "user_permissions")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "role", "first_name", "last_name", "password1", "password2"),
            },
        ),
    )
    filter_horizontal = ("groups", "user_permissions")

    def get_fieldsets(self, request: HttpRequest, obj=None):  # noqa: ANN001, ANN201
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # Read-only viewers (clinicians) get no password field: it would show the hash and a reset link.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "password"]})
            for name, options in fieldsets
            if name != "Permissions"
        ]

    def get_inlines(self, request: HttpRequest, obj=None):  # noqa: ANN001, ANN201
        if obj is None:
            return []
        inlines = [ProfileInline, ClinicianProfileInline] if obj.is_clinician else [ProfileInline]
        if obj.pk != request.user.pk and not self.visible_patients(request, Scope.METRICS).filter(pk=obj.pk).exists():
            inlines.remove(ProfileInline)  # the medical profile is covered by the metrics scope
        return inlines

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        Profile.objects.get_or_create(user=obj)
        if obj.is_clinician:
            ClinicianProfile.objects.get_or_create(user=obj)


class EmergencyContactInline(ReadableByClinicians, admin.TabularInline):
    model = EmergencyContact
    extra = 0


@admin.register(Profile)
class ProfileAdmin(PatientDataAdmin):
    access_scope = Scope.METRICS  # the medical profile (conditions, blood type, contacts) is health data
    list_display = ("user", "sex", "date_of_birth", "timezone", "preferred_units")
    list_filter = ("sex", "preferred_units")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    inlines = [EmergencyContactInline]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "phone")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(ClinicianProfile)
class ClinicianProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "specialty", "license_number", "organization")
    list_filter = ("organization", "specialty")
    search_fields = ("user__email", "license_number")
    list_select_related = ("user", "organization")
    raw_id_fields = ("user",)


@admin.register(ClinicianInvitation)
class ClinicianInvitationAdmin(admin.ModelAdmin):
    """Saving a new invitation emails the clinician a registration link."""

    list_display = ("email", "organization", "specialty", "created_at", "expires_at", "accepted_at")
    list_filter = ("organization",)
    search_fields = ("email",)
    readonly_fields = ("invited_by", "accepted_at", "created_at")
    actions = ["resend"]

    def save_model(self, request: HttpRequest, obj: ClinicianInvitation, form, change: bool) -> None:  # noqa: ANN001
        if not change:
            obj.invited_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            send_clinician_invitation(invitation=obj)
            self.message_user(request, f"Invitation emailed to {obj.email}.", messages.SUCCESS)

    @admin.action(description="Email the invitation again")
    def resend(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent = 0
        for invitation in queryset:
            if invitation.is_usable:
                send_clinician_invitation(invitation=invitation)
                sent += 1
        self.message_user(request, f"Sent {sent} invitation(s).", messages.SUCCESS)


@admin.register(CareTeamGrant)
class CareTeamGrantAdmin(PatientDataAdmin):
    """Grants; a clinician sees only the grants they hold."""

    patient_field = "patient"
    access_scope = None
    list_display = ("patient", "clinician", "scopes", "granted_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "granted_at")
    search_fields = ("patient__email", "clinician__email")
    list_select_related = ("patient", "clinician")
    raw_id_fields = ("patient", "clinician")
    date_hierarchy = "granted_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return queryset.filter(clinician=request.user) if request.user.is_clinician else queryset


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the log is append-only."""

    list_display = ("at", "actor", "patient", "action", "resource", "object_id", "ip", "request_id")
    list_filter = ("action", "resource", "at")
    search_fields = ("actor__email", "patient__email", "object_id", "request_id")
    list_select_related = ("actor", "patient")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


class IssuedRefreshTokenInline(admin.TabularInline):
    """The session's refresh tokens by id and time: the hash is not shown, and the token was never kept."""

    model = IssuedRefreshToken
    fields = ("jti", "created_at", "expires_at", "spent_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(AuthSession)
class AuthSessionAdmin(admin.ModelAdmin):
    """Sign-in sessions: who, since when, until when, and how each ended. Read-only; no token is shown."""

    list_display = ("id", "user", "created_at", "expires_at", "state", "ended_at", "end_reason")
    list_filter = ("end_reason", "created_at")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    fields = ("id", "user", "created_at", "expires_at", "state", "ended_at", "end_reason")
    readonly_fields = fields
    inlines = [IssuedRefreshTokenInline]

    @admin.display(description="state")
    def state(self, obj: AuthSession) -> str:
        return obj.state

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False
