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

ADMIN_STAFF_ONLY = {"appointments.provider": "clinicians' booking settings, hours and types: set up by staff"}

OWNER_DATA = {"appointments.appointmentevent": "appointment__patient"}
