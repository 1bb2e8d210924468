"""Reads that decide who may see what. The access rule lives here, once."""

from __future__ import annotations

import zoneinfo

from django.db.models import Q, QuerySet

from .models import CareTeamGrant, Profile, Role, User


def visible_patients(user: User, scope: str | None = None) -> QuerySet[User]:
    """The users whose data `user` may see for `scope` (any scope when None).

    A person always sees themselves; a clinician also sees the patients whose care-team
    grant to them is open, unexpired and includes the scope; staff see everyone (and
    every such read is in the access log). Everything else is invisible, which the API
    answers as 404.
    """
    if not user.is_authenticated or not user.is_active:
        return User.objects.none()
    if user.sees_all_patients:
        return User.objects.all()
    if user.is_clinician:
        grants = CareTeamGrant.objects.active().filter(clinician=user)
        if scope is not None:
            grants = grants.with_scope(scope)
        return User.objects.filter(Q(pk=user.pk) | Q(pk__in=grants.values("patient")))
    return User.objects.filter(pk=user.pk)


def can_access(user: User, patient: User, scope: str | None = None) -> bool:
    if user.is_authenticated and user.pk == patient.pk:
        return True
    return visible_patients(user, scope).filter(pk=patient.pk).exists()


def consented_patients(user: User) -> QuerySet[User]:
    """The patients (other than the user) whose data the user may see for some scope."""
    return (
        visible_patients(user)
        .filter(role=Role.PATIENT)
        .exclude(pk=user.pk)
        .select_related("profile")
        .order_by("last_name", "first_name", "email")
    )


def user_timezone(user: User) -> zoneinfo.ZoneInfo:
    """The zone of the user's profile: what "today" and a local day mean for their data."""
    name = Profile.objects.filter(user=user).values_list("timezone", flat=True).first() or "UTC"
    return zoneinfo.ZoneInfo(name)
