"""The curated catalog: what migration 0002 loads, its sources, and that loading again changes nothing."""

from pathlib import Path

import pytest

from medications.catalog import DATA_DIR, load_catalog, read_catalog
from medications.models import DrugClass, Ingredient, InteractionRule, Medication

pytestmark = pytest.mark.django_db


def test_the_migration_loads_at_least_150_ingredients_each_with_a_product():
    assert Ingredient.objects.count() >= 150
    assert Ingredient.objects.filter(medications__isnull=True).count() == 0
    assert Medication.objects.count() >= 200


def test_every_row_names_its_source():
    assert DrugClass.objects.filter(source="").count() == 0
    assert Ingredient.objects.filter(source="").count() == 0
    assert Medication.objects.filter(source="").count() == 0
    assert InteractionRule.objects.filter(source="").count() == 0


def test_warfarin_with_any_nsaid_is_one_class_level_rule():
    warfarin = Ingredient.objects.get(name="warfarin")
    rule = InteractionRule.objects.get(ingredient_a=warfarin, class_b="nsaid")
    assert rule.severity == "major"
    assert "Phansalkar" in rule.source
    assert warfarin.rxcui == "11289"
    assert set(Ingredient.objects.get(name="ibuprofen").classes.values_list("code", flat=True)) == {"nsaid"}


def test_amoxicillin_is_a_penicillin_and_penicillin_is_an_allergy_word():
    amoxicillin = Ingredient.objects.get(name="amoxicillin")
    assert list(amoxicillin.classes.values_list("code", flat=True)) == ["penicillin"]
    assert "penicillin" in DrugClass.objects.get(code="penicillin").synonyms
    assert DrugClass.objects.get(code="statin").duplicate_therapy is True
    assert DrugClass.objects.get(code="cyp3a4-strong-inhibitor").duplicate_therapy is False


def test_a_product_has_its_ingredients_form_strength_and_class():
    product = Medication.objects.get(name="Amoxicillin 875 MG / Clavulanate 125 MG Oral Tablet")
    assert sorted(product.ingredients.values_list("name", flat=True)) == ["amoxicillin", "clavulanate"]
    assert (product.form, product.strength, product.drug_class_id) == ("tablet", "875 mg / 125 mg", "penicillin")


def test_a_second_load_changes_nothing(django_assert_max_num_queries):
    counts = (DrugClass.objects.count(), Ingredient.objects.count(), Medication.objects.count())
    rules = InteractionRule.objects.count()
    with django_assert_max_num_queries(10):
        result = load_catalog()
    assert result["created"] == 0
    assert result["updated"] == 0
    assert (DrugClass.objects.count(), Ingredient.objects.count(), Medication.objects.count()) == counts
    assert InteractionRule.objects.count() == rules == result["rules"]
    assert result["ingredients"] == counts[1]


def test_a_load_restores_a_changed_row_and_keeps_an_imported_code():
    Ingredient.objects.filter(name="warfarin").update(synonyms=[])
    Ingredient.objects.filter(name="linagliptin").update(rxcui="9999901")
    InteractionRule.objects.filter(class_b="nsaid", ingredient_a__name="warfarin").update(severity="minor")

    result = load_catalog()

    assert (result["created"], result["updated"]) == (0, 2)
    assert Ingredient.objects.get(name="warfarin").synonyms == ["coumadin", "jantoven"]
    assert Ingredient.objects.get(name="linagliptin").rxcui == "9999901"  # a blank rxcui in the file clears nothing
    assert InteractionRule.objects.get(class_b="nsaid", ingredient_a__name="warfarin").severity == "major"


def _copy_data(tmp_path: Path) -> Path:
    for path in DATA_DIR.glob("*.csv"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_a_rule_naming_an_unknown_ingredient_fails_with_file_and_line(tmp_path):
    data = _copy_data(tmp_path)
    with (data / "interactions.csv").open("a", encoding="utf-8") as handle:
        handle.write("warfarin,unobtainium,major,Something.,Do something.,Test\n")
    lines = len((data / "interactions.csv").read_text(encoding="utf-8").splitlines())

    with pytest.raises(ValueError, match=rf"interactions.csv:{lines}: unknown ingredient 'unobtainium'"):
        load_catalog(data_dir=data)


def test_an_ingredient_in_an_unknown_class_fails_with_file_and_line(tmp_path):
    data = _copy_data(tmp_path)
    text = (
        (data / "ingredients.csv")
        .read_text(encoding="utf-8")
        .replace("warfarin,11289,anticoagulant,", "warfarin,11289,anticoagulant;vitamin-k-antagonist,")
    )
    (data / "ingredients.csv").write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if row.startswith("warfarin,"))

    with pytest.raises(ValueError, match=rf"ingredients.csv:{line}: unknown drug class 'vitamin-k-antagonist'"):
        read_catalog(data)


def test_the_files_hold_no_repeated_keys():
    specs = read_catalog()
    for kind, key in (("classes", "code"), ("ingredients", "name"), ("medications", "name")):
        keys = [spec[key] for spec in specs[kind]]
        assert len(keys) == len(set(keys)), kind
    pairs = [frozenset((rule["a"], rule["b"])) for rule in specs["rules"]]
    assert len(pairs) == len(set(pairs))
    rxcuis = [spec["rxcui"] for spec in specs["ingredients"] if spec["rxcui"]]
    assert len(rxcuis) == len(set(rxcuis))
