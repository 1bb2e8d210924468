"""The curated medication catalog: loading medications/data/*.csv into the catalog tables.

Four files, each with a header row, UTF-8, lists inside a cell separated by `;`, and a `source` on every row
(medications/data/SOURCES.md names the sources and their licences):

- drug_classes.csv: code, name, duplicate_therapy (true/false), synonyms, source
- ingredients.csv: name, rxcui, classes (class codes), synonyms, source
- medications.csv: name, generic_name, form, strength, rxcui, ingredients (ingredient names), drug_class, source
- interactions.csv: side_a, side_b (an ingredient name or `class:<code>`), severity, summary, advice, source

`load_catalog` upserts them by their natural keys (class code, ingredient name, product name, and a rule's pair of
sides in either order), so loading twice changes nothing. A blank `rxcui` never clears a code an RxNorm import
has filled in. Every file is read and checked before anything is written, and a row naming an unknown class or
ingredient fails the load with the file and line. Migration 0002 calls it with the historical models.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.db import transaction

DATA_DIR = Path(__file__).parent / "data"
CLASSES_CSV = "drug_classes.csv"
INGREDIENTS_CSV = "ingredients.csv"
MEDICATIONS_CSV = "medications.csv"
INTERACTIONS_CSV = "interactions.csv"
SEVERITIES = ("contraindicated", "major", "moderate", "minor")
CLASS_PREFIX = "class:"


def _rows(name: str, data_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Each row with its place ("ingredients.csv:12"; the header is line 1), cells stripped, a source required."""
    path = data_dir / name
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{name}:{line}"
            if None in row or any(value is None for value in row.values()):
                raise ValueError(f"{where}: wrong number of columns")
            row = {key: value.strip() for key, value in row.items()}
            if not row.get("source"):
                raise ValueError(f"{where}: the row names no source")
            yield where, row


def _list(cell: str) -> list[str]:
    return [item.strip().lower() for item in cell.split(";") if item.strip()]


def _bool(cell: str, where: str) -> bool:
    if cell.lower() not in ("true", "false"):
        raise ValueError(f"{where}: duplicate_therapy must be true or false, not {cell!r}")
    return cell.lower() == "true"


def read_catalog(
    data_dir: Path = DATA_DIR, *, known_classes: Iterable[str] = (), known_ingredients: Iterable[str] = ()
) -> dict[str, list[Any]]:
    """The four files as plain specs, every reference checked against the files (and the names already known)."""
    classes = []
    for where, row in _rows(CLASSES_CSV, data_dir):
        classes.append(
            {
                "code": row["code"],
                "name": row["name"],
                "duplicate_therapy": _bool(row["duplicate_therapy"], where),
                "synonyms": _list(row["synonyms"]),
                "source": row["source"],
            }
        )
    class_codes = {spec["code"] for spec in classes} | set(known_classes)

    def check_class(code: str, where: str) -> str:
        if code not in class_codes:
            raise ValueError(f"{where}: unknown drug class {code!r}")
        return code

    ingredients = []
    for where, row in _rows(INGREDIENTS_CSV, data_dir):
        ingredients.append(
            {
                "name": row["name"].lower(),
                "rxcui": row["rxcui"] or None,
                "classes": [check_class(code, where) for code in _list(row["classes"])],
                "synonyms": _list(row["synonyms"]),
                "source": row["source"],
            }
        )
    ingredient_names = {spec["name"] for spec in ingredients} | set(known_ingredients)

    def check_ingredient(name: str, where: str) -> str:
        if name not in ingredient_names:
            raise ValueError(f"{where}: unknown ingredient {name!r}")
        return name

    medications = []
    for where, row in _rows(MEDICATIONS_CSV, data_dir):
        names = [check_ingredient(name, where) for name in _list(row["ingredients"])]
        if not names:
            raise ValueError(f"{where}: a product needs at least one ingredient")
        medications.append(
            {
                "name": row["name"],
                "generic_name": row["generic_name"],
                "form": row["form"].lower(),
                "strength": row["strength"],
                "rxcui": row["rxcui"] or None,
                "ingredients": names,
                "drug_class": check_class(row["drug_class"], where) if row["drug_class"] else None,
                "source": row["source"],
            }
        )

    def side(text: str, where: str) -> tuple[str, str]:
        text = text.strip().lower()
        if text.startswith(CLASS_PREFIX):
            return ("class", check_class(text.removeprefix(CLASS_PREFIX), where))
        return ("ingredient", check_ingredient(text, where))

    rules = []
    for where, row in _rows(INTERACTIONS_CSV, data_dir):
        if row["severity"] not in SEVERITIES:
            raise ValueError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, not {row['severity']!r}")
        if not row["summary"] or not row["advice"]:
            raise ValueError(f"{where}: a rule needs a summary and advice")
        rules.append(
            {
                "a": side(row["side_a"], where),
                "b": side(row["side_b"], where),
                "severity": row["severity"],
                "summary": row["summary"],
                "advice": row["advice"],
                "source": row["source"],
                "where": where,
            }
        )
    return {"classes": classes, "ingredients": ingredients, "medications": medications, "rules": rules}


def _update(obj: Any, values: dict[str, Any], using: str) -> bool:
    """Save the fields that differ; answer whether any did."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if changed:
        obj.save(using=using, update_fields=changed)
    return bool(changed)


def rule_key(ingredient_a: int | None, class_a: str | None, ingredient_b: int | None, class_b: str | None) -> tuple:
    """A rule's identity: its two sides, in either order."""
    a = f"i:{ingredient_a}" if ingredient_a is not None else f"c:{class_a}"
    b = f"i:{ingredient_b}" if ingredient_b is not None else f"c:{class_b}"
    return tuple(sorted((a, b)))


def load_catalog(*, apps: Any = None, using: str = "default", data_dir: Path = DATA_DIR) -> dict[str, int]:
    """Create or update the catalog from the CSV files; answer the row counts and how many rows changed."""
    if apps is None:
        from . import models

        DrugClass, Ingredient = models.DrugClass, models.Ingredient  # noqa: N806
        Medication, InteractionRule = models.Medication, models.InteractionRule  # noqa: N806
    else:
        DrugClass = apps.get_model("medications", "DrugClass")  # noqa: N806
        Ingredient = apps.get_model("medications", "Ingredient")  # noqa: N806
        Medication = apps.get_model("medications", "Medication")  # noqa: N806
        InteractionRule = apps.get_model("medications", "InteractionRule")  # noqa: N806

    created = updated = 0
    with transaction.atomic(using=using):
        classes = {c.code: c for c in DrugClass.objects.using(using).all()}
        ingredients = {i.name: i for i in Ingredient.objects.using(using).all()}
        specs = read_catalog(data_dir, known_classes=classes, known_ingredients=ingredients)

        # New rows are written in bulk (a first load into empty tables is a few statements, not thousands).
        new_classes = []
        for spec in specs["classes"]:
            values = {key: spec[key] for key in ("name", "duplicate_therapy", "synonyms", "source")}
            if spec["code"] not in classes:
                classes[spec["code"]] = DrugClass(code=spec["code"], **values)
                new_classes.append(classes[spec["code"]])
            elif _update(classes[spec["code"]], values, using):
                updated += 1
        DrugClass.objects.using(using).bulk_create(new_classes)
        created += len(new_classes)

        class_links: dict[int, set[str]] = {}
        for ingredient_id, code in Ingredient.classes.through.objects.using(using).values_list(
            "ingredient_id", "drugclass_id"
        ):
            class_links.setdefault(ingredient_id, set()).add(code)
        new_ingredients = []
        for spec in specs["ingredients"]:
            values = {"synonyms": spec["synonyms"], "source": spec["source"]}
            if spec["rxcui"]:
                values["rxcui"] = spec["rxcui"]
            ingredient = ingredients.get(spec["name"])
            if ingredient is None:
                ingredients[spec["name"]] = Ingredient(name=spec["name"], **values)
                new_ingredients.append((ingredients[spec["name"]], spec["classes"]))
                continue
            changed = _update(ingredient, values, using)
            if class_links.get(ingredient.pk, set()) != set(spec["classes"]):
                ingredient.classes.set(spec["classes"])
                changed = True
            updated += changed
        Ingredient.objects.using(using).bulk_create([ingredient for ingredient, _ in new_ingredients])
        ClassLink = Ingredient.classes.through  # noqa: N806
        ClassLink.objects.using(using).bulk_create(
            ClassLink(ingredient_id=ingredient.pk, drugclass_id=code)
            for ingredient, codes in new_ingredients
            for code in codes
        )
        created += len(new_ingredients)

        medications: dict[str, Any] = {}
        for medication in Medication.objects.using(using).order_by("id"):
            medications.setdefault(medication.name, medication)
        ingredient_links: dict[int, set[int]] = {}
        for medication_id, ingredient_id in Medication.ingredients.through.objects.using(using).values_list(
            "medication_id", "ingredient_id"
        ):
            ingredient_links.setdefault(medication_id, set()).add(ingredient_id)
        new_medications = []
        for spec in specs["medications"]:
            values = {
                "generic_name": spec["generic_name"],
                "form": spec["form"],
                "strength": spec["strength"],
                "drug_class_id": spec["drug_class"],
                "source": spec["source"],
            }
            if spec["rxcui"]:
                values["rxcui"] = spec["rxcui"]
            wanted = {ingredients[name].pk for name in spec["ingredients"]}
            medication = medications.get(spec["name"])
            if medication is None:
                medications[spec["name"]] = Medication(name=spec["name"], **values)
                new_medications.append((medications[spec["name"]], wanted))
                continue
            changed = _update(medication, values, using)
            if ingredient_links.get(medication.pk, set()) != wanted:
                medication.ingredients.set(wanted)
                changed = True
            updated += changed
        Medication.objects.using(using).bulk_create([medication for medication, _ in new_medications])
        IngredientLink = Medication.ingredients.through  # noqa: N806
        IngredientLink.objects.using(using).bulk_create(
            IngredientLink(medication_id=medication.pk, ingredient_id=ingredient_id)
            for medication, wanted in new_medications
            for ingredient_id in wanted
        )
        created += len(new_medications)

        rules = {
            rule_key(r.ingredient_a_id, r.class_a_id, r.ingredient_b_id, r.class_b_id): r
            for r in InteractionRule.objects.using(using).order_by("id")
        }
        new_rules = []
        for spec in specs["rules"]:
            sides = {}
            for letter in ("a", "b"):
                kind, ref = spec[letter]
                sides[f"ingredient_{letter}_id"] = ingredients[ref].pk if kind == "ingredient" else None
                sides[f"class_{letter}_id"] = ref if kind == "class" else None
            key = rule_key(sides["ingredient_a_id"], sides["class_a_id"], sides["ingredient_b_id"], sides["class_b_id"])
            values = {name: spec[name] for name in ("severity", "summary", "advice", "source")}
            if key not in rules:
                rules[key] = InteractionRule(**sides, **values)
                new_rules.append(rules[key])
            elif _update(rules[key], values, using):
                updated += 1
        InteractionRule.objects.using(using).bulk_create(new_rules)
        created += len(new_rules)

    return {
        "classes": len(specs["classes"]),
        "ingredients": len(specs["ingredients"]),
        "medications": len(specs["medications"]),
        "rules": len(specs["rules"]),
        "created": created,
        "updated": updated,
    }
