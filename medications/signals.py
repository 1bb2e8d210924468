"""A patient's new timezone moves their clock-time doses: accounts knows no medications, so we listen here."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save, pre_save

from accounts.models import Profile


def _remember_timezone(sender: type, instance: Profile, raw: bool = False, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if raw or instance._state.adding or (update_fields is not None and "timezone" not in update_fields):
        return
    before = Profile.objects.filter(pk=instance.pk).values_list("timezone", flat=True).first()
    instance._timezone_changed = before is not None and before != instance.timezone


def _move_doses(sender: type, instance: Profile, raw: bool = False, **kwargs: Any) -> None:
    if raw or not getattr(instance, "_timezone_changed", False):
        return
    instance._timezone_changed = False
    from .tasks import timezone_changed_task

    patient_id = str(instance.pk)
    transaction.on_commit(lambda: timezone_changed_task.delay(patient_id))


def connect() -> None:
    pre_save.connect(_remember_timezone, sender=Profile, dispatch_uid="medications-remember-timezone")
    post_save.connect(_move_doses, sender=Profile, dispatch_uid="medications-move-doses")
