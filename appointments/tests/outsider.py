"""The appointments app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from appointments.tests.factories import AppointmentFactory, AppointmentTypeFactory, a_slot


def _appointment(owner):
    return AppointmentFactory(patient=owner, reason="owner-secret-reason", diagnosis="owner-secret-diagnosis")


def _booking_for_owner(owner, actor):
    """A booking naming the owner as the patient: only a clinician whose grant covers appointments may."""
    kind = AppointmentTypeFactory()
    return {
        "patient": str(owner.pk),
        "provider": str(kind.provider.pk),
        "appointment_type": str(kind.pk),
        "starts_at": a_slot(days=4).isoformat(),
        "reason": "An outsider's booking",
    }


API_ROUTES = {
    "appointment-list": {
        "make": _appointment,
        "patient_query": True,
        "post": _booking_for_owner,
        "post_status": 404,
        "secret": "owner-secret-diagnosis",
    },
    "appointment-detail": {
        "make": _appointment,
        "secret": "owner-secret-diagnosis",
        "body": {"reason": "changed by an outsider", "notes": "an outsider's note"},
    },
}
for _action in ("confirm", "check-in", "complete", "cancel", "no-show", "reschedule"):
    API_ROUTES[f"appointment-{_action}"] = {
        "make": _appointment,
        "secret": "owner-secret-diagnosis",
        "body": {"starts_at": a_slot(days=5).isoformat(), "note": "an outsider's note"},
    }

NOT_PATIENT_SCOPED = {
    "provider-list": "the directory of clinicians taking bookings: public to signed-in users, no patient data",
    "provider-detail": "one clinician's booking profile, no patient data",
    "provider-availability": "free slot times only: never who booked the taken ones",
}

ADMIN_MODELS = {"appointments.appointment": {"make": _appointment}}

ADMIN_EXEMPT = {
    "appointments.provider": (
        "a clinician's own booking settings, hours, overrides and types: no patient data; a clinician sees and "
        "edits only their own (appointments/tests/test_admin.py), staff every provider"
    ),
}

OWNER_DATA = {"appointments.appointmentevent": "appointment__patient"}


# --- Issue #13 §3: the caller's schedule and the calendar feed (appointments/api/schedule.py) -------------------
# These views answer the caller's own appointments only (no `?patient=`), so each outsider must see none of the
# owner's; they declare no access_scope, so the registry states the scope they belong to.


def _calendar_feed(owner):
    from appointments.calendar import rotate_token
    from appointments.models import CalendarFeed

    rotate_token(user=owner)
    return CalendarFeed.objects.get(user=owner)


def _nothing_counted(body) -> bool:
    return body["as_patient"]["total"] == 0 and body["as_provider"]["total"] == 0


API_ROUTES.update(
    {
        "appointment-upcoming": {"make": _appointment, "scope": "appointments", "secret": "owner-secret-diagnosis"},
        "appointment-stats": {"make": _appointment, "scope": "appointments", "check": _nothing_counted},
        "appointment-day": {
            "make": _appointment,
            "scope": "appointments",
            "secret": "owner-secret-diagnosis",
            "query": {"date": a_slot(days=3).date().isoformat()},
            "check": lambda body: body["appointments"] == [],
        },
        "appointment-calendar-token": {
            "make": _calendar_feed,
            "scope": "appointments",
            "post": lambda owner, actor: {},
            "post_status": 201,  # the outsider's own feed: the owner's token hash is in the snapshot, unchanged
        },
    }
)

NOT_PATIENT_SCOPED["appointment-calendar"] = (
    "no JWT: the secret token in the URL is the credential; without the owner's token the answer is 404, which "
    "appointments/tests/test_calendar.py checks with wrong, rotated and other people's tokens"
)

OWNER_DATA.update({"appointments.reminder": "appointment__patient", "appointments.calendarfeed": "user"})
