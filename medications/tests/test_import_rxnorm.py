"""`manage.py import_rxnorm` on a tiny release in RRF format (tests/fixtures/rxnorm), over the curated catalog."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from medications.models import Ingredient, Medication
from medications.rxnorm import strength_and_form

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "fixtures" / "rxnorm"


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_rxnorm", *args, stdout=out)
    return out.getvalue()


def ingredient_names(medication: Medication) -> list[str]:
    return sorted(medication.ingredients.values_list("name", flat=True))


def test_the_import_creates_new_concepts_and_codes_the_curated_ones():
    ingredients, products = Ingredient.objects.count(), Medication.objects.count()

    out = run(str(FIXTURE))

    assert (
        "RxNorm import done: ingredients: 1 created, 0 updated; products: 3 created, 4 updated; "
        "ingredient links: 4 added, 0 removed"
    ) in out
    assert Ingredient.objects.count() == ingredients + 1
    assert Medication.objects.count() == products + 3
    examplinol = Ingredient.objects.get(rxcui="9000001")
    assert (examplinol.name, examplinol.source) == ("examplinol", "RxNorm (NLM, public domain)")
    assert not Ingredient.objects.filter(name="obsoletine").exists()  # suppressed
    assert not Medication.objects.filter(rxcui="9000026").exists()  # suppressed
    # A curated product without a code is matched by name and keeps its own name, class and source.
    curated = Medication.objects.get(rxcui="9000021")
    assert (curated.name, curated.drug_class_id) == ("Warfarin Sodium 5 MG Oral Tablet", "anticoagulant")
    assert ingredient_names(curated) == ["warfarin"]


def test_imported_products_have_their_ingredients_strength_and_form():
    run(str(FIXTURE))

    combination = Medication.objects.get(rxcui="9000025")
    assert combination.name == "amoxicillin 875 MG / clavulanate potassium 125 MG Oral Tablet"
    assert (combination.generic_name, combination.strength, combination.form) == (
        "amoxicillin / clavulanate",
        "875 mg / 125 mg",
        "tablet",
    )
    assert ingredient_names(combination) == ["amoxicillin", "clavulanate"]
    branded = Medication.objects.get(rxcui="9000031")
    assert (branded.name, branded.strength, branded.form) == (
        "warfarin sodium 5 MG Oral Tablet [Coumadin]",
        "5 mg",
        "tablet",
    )
    assert ingredient_names(branded) == ["warfarin"]  # through its SCD
    assert ingredient_names(Medication.objects.get(rxcui="9000027")) == ["examplinol"]


def test_a_second_import_changes_nothing():
    run(str(FIXTURE))
    ingredients, products = Ingredient.objects.count(), Medication.objects.count()

    out = run(str(FIXTURE))

    assert (
        "ingredients: 0 created, 0 updated; products: 0 created, 0 updated; ingredient links: 0 added, 0 removed"
    ) in out
    assert (Ingredient.objects.count(), Medication.objects.count()) == (ingredients, products)


def test_a_curated_ingredient_without_a_code_is_matched_by_name_and_gets_it():
    Ingredient.objects.filter(name="warfarin").update(rxcui=None)

    out = run(str(FIXTURE))

    assert "ingredients: 1 created, 1 updated" in out
    assert Ingredient.objects.get(name="warfarin").rxcui == "11289"
    assert Ingredient.objects.filter(name="warfarin").count() == 1


def test_prescribable_keeps_only_the_prescribable_subset():
    out = run(str(FIXTURE), "--prescribable")

    assert "products: 3 created, 3 updated" in out
    assert not Medication.objects.filter(rxcui="9000023").exists()
    assert Medication.objects.get(name="Ibuprofen 800 MG Oral Tablet").rxcui is None


def test_progress_and_the_lines_read_are_reported():
    out = run(str(FIXTURE))

    assert "RXNCONSO.RRF: 25 lines read" in out
    assert "RXNREL.RRF: 46 lines read" in out


def test_a_missing_file_is_a_clear_error(tmp_path):
    shutil.copy(FIXTURE / "RXNCONSO.RRF", tmp_path / "RXNCONSO.RRF")

    with pytest.raises(CommandError, match=r"RXNREL.RRF not found in .*; nothing was imported"):
        run(str(tmp_path))


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        run(str(tmp_path / "nowhere"))


def test_a_malformed_line_names_its_place_and_imports_nothing(tmp_path):
    shutil.copy(FIXTURE / "RXNCONSO.RRF", tmp_path / "RXNCONSO.RRF")
    lines = (FIXTURE / "RXNREL.RRF").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[9] = "9000021|x|CUI\n"
    (tmp_path / "RXNREL.RRF").write_text("".join(lines), encoding="utf-8")
    products = Medication.objects.count()

    with pytest.raises(CommandError, match=r"RXNREL.RRF:10: expected 16 fields, found 3"):
        run(str(tmp_path))
    assert Medication.objects.count() == products
    assert not Ingredient.objects.filter(name="examplinol").exists()


def test_the_release_may_sit_in_an_rrf_folder(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "rrf")

    assert "products: 3 created" in run(str(tmp_path))


@pytest.mark.parametrize(
    ("name", "dose_form", "expected"),
    [
        ("warfarin sodium 5 MG Oral Tablet", None, ("5 mg", "tablet")),
        ("insulin glargine 100 UNT/ML Pen Injector", None, ("100 unt/ml", "pen injector")),
        ("omeprazole 20 MG Delayed Release Oral Capsule", None, ("20 mg", "delayed release capsule")),
        ("albuterol 0.09 MG/ACTUAT Metered Dose Inhaler [ProAir]", None, ("0.09 mg/actuat", "metered dose inhaler")),
        ("amoxicillin 875 MG / clavulanate 125 MG Oral Tablet", "Oral Tablet", ("875 mg / 125 mg", "tablet")),
        ("acetaminophen 32 MG/ML Oral Solution", "Oral Solution", ("32 mg/ml", "oral solution")),
    ],
)
def test_strength_and_form_come_from_the_name_or_the_dose_form(name, dose_form, expected):
    assert strength_and_form(name, dose_form) == expected


def test_progress_is_reported_every_10000_lines(tmp_path):
    shutil.copy(FIXTURE / "RXNREL.RRF", tmp_path / "RXNREL.RRF")
    filler = "".join(f"{9500000 + n}|ENG||||||{n}|{n}|||RXNORM|SY|{n}|filler {n}||N||\n" for n in range(20_000))
    (tmp_path / "RXNCONSO.RRF").write_text((FIXTURE / "RXNCONSO.RRF").read_text(encoding="utf-8") + filler)

    out = run(str(tmp_path))

    assert "RXNCONSO.RRF: 10,000 lines\n" in out
    assert "RXNCONSO.RRF: 20,000 lines\n" in out
    assert "RXNCONSO.RRF: 20,025 lines read" in out
