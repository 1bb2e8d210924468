"""The medications app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from medications.tests.factories import DoseFactory, MedicationPlanFactory, PlanRevisionFactory


def _plan(owner):
    return MedicationPlanFactory(patient=owner, name="Owner-secret-medicine", instructions="owner-secret-instructions")


def _prn_plan(owner):
    return MedicationPlanFactory(
        patient=owner, name="Owner-secret-medicine", times=[], as_needed=True, max_doses_per_day=4
    )


def _dose(owner):
    return DoseFactory(plan=_plan(owner), note="owner-secret-note")


def _plan_for_owner(owner, actor):
    """A plan naming the owner as the patient: only a clinician whose grant covers medications may."""
    return {"patient": str(owner.pk), "name": "An outsider's plan", "times": ["09:00"]}


API_ROUTES = {
    "medication-list": {
        "make": _plan,
        "patient_query": True,
        "post": _plan_for_owner,
        "post_status": 404,
        "secret": "Owner-secret-medicine",
    },
    "medication-detail": {
        "make": _plan,
        "secret": "owner-secret-instructions",
        "body": {"name": "changed by an outsider", "status": "paused"},
    },
    "medication-log": {"make": _prn_plan, "secret": "Owner-secret-medicine", "body": {"note": "an outsider's dose"}},
    "medication-refill": {"make": _plan, "secret": "Owner-secret-medicine", "body": {"quantity": 10}},
    "medication-revisions": {
        "make": lambda owner: PlanRevisionFactory(plan=_plan(owner)).plan,
        "secret": "Owner-secret-medicine",
    },
    "dose-list": {"make": _dose, "patient_query": True, "secret": "owner-secret-note"},
    "dose-detail": {"make": _dose, "secret": "owner-secret-note"},
    "dose-take": {"make": _dose, "secret": "owner-secret-note", "body": {"note": "an outsider took it"}},
    "dose-skip": {"make": _dose, "secret": "owner-secret-note", "body": {"reason": "an outsider skipped it"}},
    # Summaries of the caller's own plans, or a consented patient's with `?patient=` (404 to everyone else).
    "medication-adherence": {
        "make": _dose,
        "scope": "medications",
        "patient_query": True,
        "secret": "Owner-secret-medicine",
        "check": lambda body: body["plans"] == [] and body["overall"]["taken"] == 0,
    },
    "medication-stats": {
        "make": _plan,
        "scope": "medications",
        "patient_query": True,
        "secret": "Owner-secret-medicine",
        "check": lambda body: body["active"] == 0 and body["needing_refill"] == [],
    },
}

NOT_PATIENT_SCOPED = {
    "medication-catalog-list": "the medication catalog: public reference data for signed-in users",
    "medication-catalog-detail": "one catalog product: reference data",
    "medication-interactions": "checks the medications named in the request against the rules; reads no one's plans",
}

OWNER_DATA = {
    "medications.medicationplan": "patient",
    "medications.dose": "patient",
    "medications.planrevision": "plan__patient",
}

ADMIN_MODELS = {
    "medications.medicationplan": {"make": _plan},
    "medications.planrevision": {"make": lambda owner: PlanRevisionFactory(plan=_plan(owner))},
    "medications.dose": {"make": _dose},
}

ADMIN_STAFF_ONLY = {
    "medications.drugclass": "the medication catalog: drug classes, no patient data; staff keep it",
    "medications.ingredient": "the medication catalog: active ingredients, no patient data; staff keep it",
    "medications.medication": "the medication catalog: products, no patient data; staff keep it",
    "medications.interactionrule": "the catalog's interaction rules, each with its source; staff keep them",
}
