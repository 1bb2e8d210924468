"""The accounts app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory

ANY_SCOPE = "any"  # the object is visible under any scope of a grant: the other-scopes actor is not an outsider

API_ROUTES = {
    # A grant is its patient's and its clinician's own; a third clinician never sees it, whatever they hold.
    # The outsiders' own grants from the owner name the owner, so only the grant's id may not appear in lists.
    "care-team-grant-list": {
        "make": lambda owner: CareTeamGrantFactory(patient=owner),
        "scope": ANY_SCOPE,
        "patient_query": True,
        "list_markers": lambda owner, obj: {str(obj.pk)},
        "own_rows_logged": "an expired or revoked grant stays in its clinician's list, and listing it is logged",
        # An outsider tries to grant themselves (or someone) access in the owner's name.
        "post": lambda owner, actor: {
            "patient": str(owner.pk),
            "clinician_email": actor.email,
            "scopes": list(Scope.values),
        },
    },
    "care-team-grant-detail": {
        "make": lambda owner: CareTeamGrantFactory(patient=owner),
        "scope": ANY_SCOPE,
        "no_control": "a grant is seen only by its patient and its clinician, not by another consented clinician",
    },
    # The patient record itself (name, profile, emergency contacts) goes with any scope; the vitals in it
    # are null without the metrics scope (accounts/tests/test_patients_vitals.py).
    # A patient's accounting of disclosures: rows naming the owner never reach anyone but the owner and staff.
    "access-log-list": {
        "make": lambda owner: AccessLog.objects.create(patient=owner, actor=None, resource="reading", action="read"),
        "scope": ANY_SCOPE,
        "patient_query": True,
        "list_markers": lambda owner, obj: {str(owner.pk)},
        "no_control": "a clinician never reads a patient's access history; the patient and staff do",
    },
    "patient-list": {"make": lambda owner: owner, "scope": ANY_SCOPE},
    "patient-detail": {
        "make": lambda owner: owner,
        "scope": ANY_SCOPE,
        "no_owner_control": "patients/ lists a clinician's patients; a patient is not their own patient",
    },
}

NOT_PATIENT_SCOPED = {
    "index": "the API's parts and document links (config.api.ApiIndexView), the same for everyone",
    "auth-register": "signs up a new account; acts on no existing patient",
    "auth-verify-email": "confirms the caller's own emailed token",
    "auth-login": "the caller's own credentials",
    "auth-token-refresh": "the caller's own refresh token",
    "auth-logout": "ends the caller's own sessions",
    "auth-current-user": "the caller's own account",
    "auth-profile": "the caller's own profile",
    "auth-change-password": "the caller's own password",
    "auth-password-reset": "answers the same whether or not the address is known",
    "auth-password-reset-confirm": "acts only with the emailed single-use token",
}

ADMIN_MODELS = {
    "accounts.user": {"make": lambda owner: owner, "scope": ANY_SCOPE},
    # The medical profile (conditions, allergies, contacts) is covered by the metrics scope, as in patients/{id}/.
    "accounts.profile": {"make": lambda owner: owner.profile},
    "accounts.careteamgrant": {
        "make": lambda owner: CareTeamGrantFactory(patient=owner),
        "scope": ANY_SCOPE,
        "no_control": "a clinician sees only the grants they hold, not the patient's grants to others",
    },
}

ADMIN_EXEMPT: dict[str, str] = {}

# Admin pages beyond a ModelAdmin's standard ones, by URL name: how to point one at the owner, and what a
# POST would try (nothing may change).
ADMIN_VIEWS = {
    "auth_user_password_change": {
        "args": lambda owner: [owner.pk],
        "scope": ANY_SCOPE,
        "post": {"password1": "taken-Over-passw0rd-1", "password2": "taken-Over-passw0rd-1"},
    },
}

# Not a patient's record, and not for clinicians: the admin refuses them (403), which the harness checks.
ADMIN_STAFF_ONLY = {
    "accounts.organization": "hospitals and clinics, not a patient's data",
    "accounts.clinicianprofile": "a clinician's own professional details",
    "accounts.clinicianinvitation": "registration links for clinicians",
    "accounts.accesslog": "the audit log names patients; staff read it here, patients their own in access-log/",
    "accounts.authsession": "sign-in sessions: who signed in when, and how it ended; no token",
}

# Rows of the owner's data outside the admin's models, included in the before/after snapshot.
OWNER_DATA = {
    "accounts.emergencycontact": "profile__user",
}
