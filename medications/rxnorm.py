"""Reading an RxNorm release (its RRF files) into the catalog: ingredients and clinical and branded drugs.

The files are NLM's Rich Release Format, pipe-delimited, one row a line, each line ending in a `|`
(RxNorm Technical Documentation, https://www.nlm.nih.gov/research/umls/rxnorm/docs/techdoc.html):

- RXNCONSO.RRF, 18 fields: RXCUI LAT TS LUI STT SUI ISPREF RXAUI SAUI SCUI SDUI SAB TTY CODE STR SRL SUPPRESS CVF.
  We keep NLM's own names (SAB=RXNORM, LAT=ENG) that are not suppressed (SUPPRESS=N), of the term types we use:
  IN (ingredient), SCD (clinical drug), SBD (branded drug), and the steps between them: SCDC / SBDC (drug
  components: ingredient and strength) and DF (dose form). `--prescribable` keeps only the IN, SCD and SBD rows
  whose content view flag (CVF) has the bit 4096, NLM's prescribable subset.
- RXNREL.RRF, 16 fields: RXCUI1 RXAUI1 STYPE1 REL RXCUI2 RXAUI2 STYPE2 RELA RUI SRUI SAB SL DIR RG SUPPRESS CVF.
  RELA is what the second concept is to the first ("RXCUI1=SCDC, RELA=ingredient_of, RXCUI2=IN": the IN is an
  ingredient of the SCDC), and each relationship comes in both directions. We orient each link by the term types
  of its two ends, so either direction (or only one) is enough:
  IN has_ingredient / ingredient_of SCDC (or a drug directly); SCDC constitutes / consists_of SCD (SBDC and SBD
  likewise); SBD tradename_of / has_tradename SCD (SBDC and SCDC likewise); DF has_dose_form / dose_form_of a drug.

A drug's ingredients are those of its components (an SBDC through its SCDC) and, for an SBD, those of its SCD.
Strength comes from the name ("5 MG", "875 MG / 125 MG"), form from the linked dose form (else the name's tail),
lower case, with "oral" dropped before tablet and capsule ("Oral Tablet" -> "tablet").

Writing upserts by rxcui: an existing ingredient or product without an rxcui is matched by its name, case
insensitively, and given the code; rows we curated keep their own names, classes and sources, and gain
ingredient links but never lose them. Everything is parsed before anything is written, and written in one
transaction, so an error leaves nothing half-written; a second run changes nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from .models import Ingredient, Medication

CONSO = "RXNCONSO.RRF"
REL = "RXNREL.RRF"
CONSO_FIELDS = 18
REL_FIELDS = 16
PRESCRIBABLE = 4096
PROGRESS_EVERY = 10_000
SOURCE = "RxNorm (NLM, public domain)"
PRODUCT_TTYS = ("SCD", "SBD")
KEPT_TTYS = ("IN", "SCD", "SBD", "SCDC", "SBDC", "DF")
FILTERED_TTYS = ("IN", "SCD", "SBD")  # --prescribable applies to what we import, not to the steps between

INGREDIENT_RELAS = {"has_ingredient", "ingredient_of"}
COMPONENT_RELAS = {"consists_of", "constitutes"}
TRADENAME_RELAS = {"tradename_of", "has_tradename"}
DOSE_FORM_RELAS = {"has_dose_form", "dose_form_of"}

_STRENGTH = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s+([A-Z%]+(?:/[A-Z0-9]+)?)(?=\s|$)")
_BRAND = re.compile(r"\s*\[[^\]]*\]\s*$")


class RxNormError(Exception):
    """A release that cannot be read: a missing file or a malformed line."""


@dataclass
class Release:
    """What we keep of a release: concepts by rxcui ((tty, name)) and the links between them."""

    concepts: dict[str, tuple[str, str]] = field(default_factory=dict)
    ingredients_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # SCDC or drug -> IN
    components_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # drug -> SCDC/SBDC
    clinical_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # SBD -> SCD, SBDC -> SCDC
    dose_form_of: dict[str, str] = field(default_factory=dict)  # drug -> DF name
    skipped: int = 0  # concept rows left out: suppressed, another source or language, or not prescribable


def find_files(directory: Path) -> dict[str, Path]:
    """The two files, in the directory or its `rrf/` folder (how NLM's zip unpacks)."""
    found = {}
    for name in (CONSO, REL):
        for candidate in (directory / name, directory / "rrf" / name):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            raise RxNormError(f"{name} not found in {directory} (nor in {directory / 'rrf'})")
    return found


def _lines(path: Path, width: int, progress: Callable[[str], None]) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        number = 0
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").split("|")
            if len(fields) < width:
                raise RxNormError(f"{path.name}:{number}: expected {width} fields, found {len(fields)}")
            if number % PROGRESS_EVERY == 0:
                progress(f"{path.name}: {number:,} lines")
            yield fields
        progress(f"{path.name}: {number:,} lines read")


def read_release(
    files: dict[str, Path], *, prescribable: bool = False, progress: Callable[[str], None] = lambda _: None
) -> Release:
    release = Release()
    concepts = release.concepts
    for fields in _lines(files[CONSO], CONSO_FIELDS, progress):
        rxcui, lat, sab, tty, name, suppress, cvf = (fields[i] for i in (0, 1, 11, 12, 14, 16, 17))
        if tty not in KEPT_TTYS:
            continue
        if sab != "RXNORM" or lat != "ENG" or suppress != "N":
            release.skipped += 1
            continue
        if prescribable and tty in FILTERED_TTYS and not (cvf.isdigit() and int(cvf) & PRESCRIBABLE):
            release.skipped += 1
            continue
        concepts.setdefault(rxcui, (tty, name))

    def oriented(first: str, second: str, one: tuple[str, ...], other: tuple[str, ...]) -> tuple[str, str] | None:
        """(the end of type `one`, the end of type `other`), whichever way round the row has them."""
        tty_first, tty_second = concepts[first][0], concepts[second][0]
        if tty_first in one and tty_second in other:
            return first, second
        if tty_second in one and tty_first in other:
            return second, first
        return None

    for fields in _lines(files[REL], REL_FIELDS, progress):
        first, second, rela, sab, suppress = (fields[i] for i in (0, 4, 7, 10, 14))
        if sab != "RXNORM" or suppress not in ("", "N") or first not in concepts or second not in concepts:
            continue
        if rela in INGREDIENT_RELAS:
            if pair := oriented(first, second, ("IN",), ("SCDC", "SBDC", "SCD", "SBD")):
                release.ingredients_of[pair[1]].add(pair[0])
        elif rela in COMPONENT_RELAS:
            if pair := oriented(first, second, PRODUCT_TTYS, ("SCDC", "SBDC")):
                release.components_of[pair[0]].add(pair[1])
        elif rela in TRADENAME_RELAS:
            if pair := oriented(first, second, ("SBD", "SBDC"), ("SCD", "SCDC")):
                release.clinical_of[pair[0]].add(pair[1])
        elif rela in DOSE_FORM_RELAS and (pair := oriented(first, second, PRODUCT_TTYS, ("DF",))):
            release.dose_form_of[pair[0]] = concepts[pair[1]][1]
    return release


def product_ingredients(release: Release, rxcui: str) -> set[str]:
    """The IN rxcuis of a drug: direct links, its components' (an SBDC's through its SCDC), and its SCD's."""
    found = set(release.ingredients_of.get(rxcui, ()))
    for component in release.components_of.get(rxcui, ()):
        found |= release.ingredients_of.get(component, set())
        for clinical in release.clinical_of.get(component, ()):
            found |= release.ingredients_of.get(clinical, set())
    if release.concepts[rxcui][0] == "SBD":
        for clinical in release.clinical_of.get(rxcui, ()):
            if clinical != rxcui:
                found |= product_ingredients(release, clinical)
    return {ingredient for ingredient in found if release.concepts.get(ingredient, ("",))[0] == "IN"}


def normalise_form(text: str) -> str:
    form = " ".join(text.lower().split())
    for kind in ("tablet", "capsule"):
        form = re.sub(rf"\boral {kind}$", kind, form)
    return form


def strength_and_form(name: str, dose_form: str | None) -> tuple[str, str]:
    """("5 mg", "tablet") from "Warfarin Sodium 5 MG Oral Tablet" (a brand in brackets is ignored)."""
    plain = _BRAND.sub("", name)
    matches = list(_STRENGTH.finditer(plain))
    strength = " / ".join(f"{m.group(1)} {m.group(2).lower()}" for m in matches)
    if dose_form:
        form = dose_form
    elif matches:
        form = plain[matches[-1].end() :]
    else:
        form = ""
    return strength[:120], normalise_form(form)[:80]


@dataclass
class Counts:
    ingredients_created: int = 0
    ingredients_updated: int = 0
    products_created: int = 0
    products_updated: int = 0
    links_added: int = 0
    links_removed: int = 0

    def summary(self) -> str:
        return (
            f"ingredients: {self.ingredients_created} created, {self.ingredients_updated} updated; "
            f"products: {self.products_created} created, {self.products_updated} updated; "
            f"ingredient links: {self.links_added} added, {self.links_removed} removed"
        )


@transaction.atomic
def write_release(release: Release) -> Counts:
    counts = Counts()
    concepts = release.concepts

    # Ingredients: by rxcui, else by lower-case name.
    by_rxcui = {i.rxcui: i for i in Ingredient.objects.exclude(rxcui=None)}
    by_name = {i.name.lower(): i for i in Ingredient.objects.all()}
    ingredient_for: dict[str, Ingredient] = {}
    new_ingredients, changed_ingredients = [], []
    for rxcui, (tty, name) in concepts.items():
        if tty != "IN":
            continue
        ingredient = by_rxcui.get(rxcui) or by_name.get(name.lower()[:200])
        if ingredient is None:
            ingredient = Ingredient(name=name.lower()[:200], rxcui=rxcui, source=SOURCE)
            new_ingredients.append(ingredient)
            by_name[ingredient.name] = ingredient
        elif ingredient.rxcui is None and rxcui not in by_rxcui:
            ingredient.rxcui = rxcui
            changed_ingredients.append(ingredient)
        ingredient_for[rxcui] = ingredient
    Ingredient.objects.bulk_create(new_ingredients, batch_size=1000)
    Ingredient.objects.bulk_update(changed_ingredients, ["rxcui"], batch_size=1000)
    counts.ingredients_created, counts.ingredients_updated = len(new_ingredients), len(changed_ingredients)

    # Products: by rxcui, else a product without one by lower-case name.
    products = {m.rxcui: m for m in Medication.objects.exclude(rxcui=None)}
    unnamed = {}
    for medication in Medication.objects.filter(rxcui=None).order_by("id"):
        unnamed.setdefault(medication.name.lower(), medication)
    wanted_links: dict[str, set[int]] = {}
    new_products, changed_products = [], {}
    fields = ("name", "generic_name", "form", "strength")
    for rxcui, (tty, name) in concepts.items():
        if tty not in PRODUCT_TTYS:
            continue
        ingredient_ids = {ingredient_for[i].pk for i in product_ingredients(release, rxcui) if i in ingredient_for}
        strength, form = strength_and_form(name, release.dose_form_of.get(rxcui))
        generic = " / ".join(sorted(ingredient_for[i].name for i in product_ingredients(release, rxcui)))
        values = {"name": name[:300], "generic_name": generic[:300], "form": form, "strength": strength}
        wanted_links[rxcui] = ingredient_ids
        product = products.get(rxcui)
        if product is None and (product := unnamed.pop(name.lower()[:300], None)) is not None:
            product.rxcui = rxcui
            products[rxcui] = changed_products[rxcui] = product
        if product is None:
            product = Medication(rxcui=rxcui, source=SOURCE, **values)
            new_products.append(product)
            products[rxcui] = product
        elif product.source == SOURCE and any(getattr(product, f) != v for f, v in values.items()):
            for field_name, value in values.items():
                setattr(product, field_name, value)
            changed_products[rxcui] = product
    Medication.objects.bulk_create(new_products, batch_size=1000)
    Medication.objects.bulk_update(list(changed_products.values()), ["rxcui", *fields], batch_size=1000)
    counts.products_created = len(new_products)

    # Ingredient links: imported products get exactly RxNorm's; curated ones gain missing links, never lose any.
    Link = Medication.ingredients.through  # noqa: N806
    current: dict[int, set[int]] = defaultdict(set)
    for medication_id, ingredient_id in Link.objects.filter(
        medication_id__in=[products[r].pk for r in wanted_links]
    ).values_list("medication_id", "ingredient_id"):
        current[medication_id].add(ingredient_id)
    to_add, linked_changed = [], set()
    for rxcui, wanted in wanted_links.items():
        product = products[rxcui]
        have = current.get(product.pk, set())
        for ingredient_id in sorted(wanted - have):
            to_add.append(Link(medication_id=product.pk, ingredient_id=ingredient_id))
            linked_changed.add(rxcui)
        extra = have - wanted
        if extra and product.source == SOURCE and wanted:
            counts.links_removed += Link.objects.filter(medication_id=product.pk, ingredient_id__in=extra).delete()[0]
            linked_changed.add(rxcui)
    Link.objects.bulk_create(to_add, batch_size=1000, ignore_conflicts=True)
    counts.links_added = len(to_add)
    new_rxcuis = {p.rxcui for p in new_products}
    counts.products_updated = len((set(changed_products) | linked_changed) - new_rxcuis)
    return counts


def import_release(
    directory: Path, *, prescribable: bool = False, progress: Callable[[str], None] = lambda _: None
) -> Counts:
    files = find_files(directory)
    release = read_release(files, prescribable=prescribable, progress=progress)
    return write_release(release)
