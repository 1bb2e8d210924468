"""The medications app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from medications.tests.factories import DoseFactory, MedicationPlanFactory, PlanRevisionFactory


def _plan(owner):
    return MedicationPlanFactory(patient=owner, name="owner-secret-medicine")


def _revision(owner):
    return PlanRevisionFactory(plan=_plan(owner))


def _dose(owner):
    return DoseFactory(plan=_plan(owner))


ADMIN_MODELS = {
    "medications.medicationplan": {"make": _plan},
    "medications.planrevision": {"make": _revision},
    "medications.dose": {"make": _dose},
}

ADMIN_STAFF_ONLY = {
    "medications.drugclass": "the medication catalog: drug classes, no patient data; staff keep it",
    "medications.ingredient": "the medication catalog: active ingredients, no patient data; staff keep it",
    "medications.medication": "the medication catalog: products, no patient data; staff keep it",
    "medications.interactionrule": "the catalog's interaction rules, each with its source; staff keep them",
}
