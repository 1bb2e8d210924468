"""check_plan with the catalog migration 0002 loaded: a patient's active plans and profile allergies."""

import pytest

from accounts.models import Profile
from medications.models import Ingredient, Medication, PlanStatus
from medications.safety import check_plan, drug_for_medication, drug_for_name, rules
from medications.tests.factories import MedicationPlanFactory

pytestmark = pytest.mark.django_db


def product(name: str) -> Medication:
    return Medication.objects.get(name=name)


def test_an_amoxicillin_plan_warns_a_patient_allergic_to_penicillin(user):
    Profile.objects.filter(user=user).update(allergies=["Penicillin"])
    amoxicillin = product("Amoxicillin 500 MG Oral Capsule")

    findings = check_plan(patient=user, drug=drug_for_medication(amoxicillin))

    assert [(f.kind, f.severity, f.code, f.drugs, f.refs) for f in findings] == [
        ("allergy", "major", "allergy:class:penicillin", (amoxicillin.name,), (str(amoxicillin.pk),))
    ]
    assert findings[0].is_severe is True


def test_a_new_ibuprofen_plan_finds_the_interaction_with_active_warfarin(user):
    warfarin_plan = MedicationPlanFactory(
        patient=user, medication=product("Warfarin Sodium 5 MG Oral Tablet"), name="Warfarin 5 mg"
    )
    MedicationPlanFactory(patient=user, medication=product("Naproxen 500 MG Oral Tablet"), status=PlanStatus.PAUSED)

    findings = check_plan(patient=user, drug=drug_for_name("Advil"))

    assert [(f.kind, f.severity, f.drugs, f.refs) for f in findings] == [
        ("interaction", "major", ("Advil", "Warfarin 5 mg"), (None, str(warfarin_plan.pk)))
    ]
    assert "Phansalkar" in findings[0].source


def test_a_free_text_warfarin_plan_interacts_the_other_way_round(user):
    MedicationPlanFactory(patient=user, name="Ibuprofen 400mg when needed")

    findings = check_plan(patient=user, drug=drug_for_medication(product("Warfarin Sodium 5 MG Oral Tablet")))

    assert [(f.kind, f.severity, f.drugs[1]) for f in findings] == [
        ("interaction", "major", "Ibuprofen 400mg when needed")
    ]


def test_two_statins_and_the_same_ingredient_twice_are_duplicates(user):
    plan = MedicationPlanFactory(patient=user, medication=product("Simvastatin 20 MG Oral Tablet"), name="Zocor")
    same = MedicationPlanFactory(patient=user, medication=product("Atorvastatin 10 MG Oral Tablet"), name="Lipitor")
    atorvastatin = Ingredient.objects.get(name="atorvastatin")

    findings = check_plan(patient=user, drug=drug_for_name("lipitor"))

    assert [(f.kind, f.severity, f.code, f.refs[1]) for f in findings] == [
        ("duplicate", "major", f"duplicate:ingredient:{atorvastatin.pk}", str(same.pk)),
        ("duplicate", "moderate", "duplicate:class:statin", str(plan.pk)),
    ]


def test_the_plan_being_changed_and_other_patients_plans_are_left_out(user, other_user):
    plan = MedicationPlanFactory(patient=user, medication=product("Warfarin Sodium 5 MG Oral Tablet"))
    MedicationPlanFactory(patient=other_user, medication=product("Ibuprofen 200 MG Oral Tablet"))

    drug = drug_for_medication(plan.medication, ref=str(plan.pk))

    assert check_plan(patient=user, drug=drug, exclude_plan_id=plan.pk) == []


def test_unknown_names_and_unrelated_drugs_have_no_findings(user):
    Profile.objects.filter(user=user).update(allergies=["peanuts", "Sulfa"])
    MedicationPlanFactory(patient=user, name="Grandma's tonic")
    MedicationPlanFactory(patient=user, medication=product("Metformin Hydrochloride 500 MG Oral Tablet"))

    assert drug_for_name("Grandma's tonic").ingredient_ids == frozenset()
    assert check_plan(patient=user, drug=drug_for_name("amlodipine")) == []


def test_a_sulfa_allergy_warns_for_the_combination_product(user):
    Profile.objects.filter(user=user).update(allergies=["sulfa drugs"])
    bactrim = product("Sulfamethoxazole 800 MG / Trimethoprim 160 MG Oral Tablet")

    findings = check_plan(patient=user, drug=drug_for_medication(bactrim))

    assert [(f.severity, f.code) for f in findings] == [("major", "allergy:class:sulfonamide-antibiotic")]


def test_a_patient_without_a_profile_is_checked_without_allergies(user):
    Profile.objects.filter(user=user).delete()

    assert check_plan(patient=user, drug=drug_for_name("amoxicillin")) == []


def test_check_plan_reads_in_a_constant_number_of_queries(user, django_assert_max_num_queries):
    names = ["Warfarin Sodium 5 MG Oral Tablet", "Sertraline 50 MG Oral Tablet", "Lisinopril 10 MG Oral Tablet"]
    for name in names:
        MedicationPlanFactory(patient=user, medication=product(name))
    for name in ["aspirin", "Tylenol", "Lipitor 20 mg", "Metformin"]:
        MedicationPlanFactory(patient=user, name=name)
    drug = drug_for_name("ibuprofen")

    with django_assert_max_num_queries(9):
        findings = check_plan(patient=user, drug=drug)

    assert {f.code.split(":")[0] for f in findings} == {"interaction", "duplicate"}


def test_rules_are_plain_data_and_cover_both_sides():
    loaded = rules()

    assert len(loaded) >= 40
    assert all(rule.source for rule in loaded)
    assert sum(1 for rule in loaded if rule.class_a == "qt-prolonging" and rule.class_b == "qt-prolonging") == 1
