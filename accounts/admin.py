"""Admin for staff, and for clinicians scoped to their consented patients."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import (
    AccessLog,
    CareTeamGrant,
    ClinicianInvitation,
    ClinicianProfile,
    EmergencyContact,
    Organization,
    Profile,
    User,
)
from .selectors import visible_patients
from .services import send_clinician_invitation


class ClinicianScopedAdmin(admin.ModelAdmin):
    """Staff see everything; clinicians may view only rows of their consented patients."""

    patient_lookup = "user"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.sees_all_patients:
            return queryset
        return queryset.filter(**{f"{self.patient_lookup}__in": visible_patients(request.user)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and (request.user.is_clinician or super().has_module_permission(request))

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.is_active and (request.user.is_clinician or super().has_view_permission(request, obj))


class ProfileInline(admin.StackedInline):
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
class UserAdmin(ClinicianScopedAdmin, BaseUserAdmin):
    patient_lookup = "pk"
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

    def get_inlines(self, request: HttpRequest, obj=None):  # noqa: ANN001, ANN201
        if obj is None:
            return []
        return [ProfileInline, ClinicianProfileInline] if obj.is_clinician else [ProfileInline]

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        Profile.objects.get_or_create(user=obj)
        if obj.is_clinician:
            ClinicianProfile.objects.get_or_create(user=obj)


class EmergencyContactInline(admin.TabularInline):
    model = EmergencyContact
    extra = 0


@admin.register(Profile)
class ProfileAdmin(ClinicianScopedAdmin):
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
class CareTeamGrantAdmin(ClinicianScopedAdmin):
    patient_lookup = "patient"
    list_display = ("patient", "clinician", "scopes", "granted_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "granted_at")
    search_fields = ("patient__email", "clinician__email")
    list_select_related = ("patient", "clinician")
    raw_id_fields = ("patient", "clinician")
    date_hierarchy = "granted_at"


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
