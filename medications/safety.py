"""Medication safety checks: interactions, allergies and duplicate therapy, as a pure core behind one loader.

The core works on plain data: a `Drug` is a label with the ingredient ids and class codes it contains, a `Rule`
one interaction rule, a `Lexicon` the names an allergy may be written as. It answers `Finding`s, most severe first,
each with a stable `code` a client echoes to acknowledge it.

- Interactions: a rule's sides are each an ingredient or a class; a side matches a drug that contains the
  ingredient or an ingredient of the class (or is a product of that class). Rules match both ways round: A with B
  is also B with A.
- Allergies: the patient's allergy strings (the profile's `allergies`) are matched case-insensitively to an
  ingredient's name or synonym, or to a class's code, name or synonym (a trailing "allergy" and a plural "s" are
  forgiven). The drug is flagged
  - contraindicated when it contains the allergen ingredient;
  - major when it contains an ingredient of the allergen class ("penicillin" flags amoxicillin), or, for an
    ingredient allergen, an ingredient sharing one of its allergy classes with it (an amoxicillin allergy flags
    ampicillin). Allergy classes are the narrow ones: classes that are duplicate-therapy classes or that carry
    allergy synonyms, never the mechanistic groups (CYP3A4 inhibitors, QT-prolonging drugs).
  One finding per allergy string and drug: the most specific.
- Duplicates: the same ingredient in two drugs is major; two drugs in the same duplicate-therapy class (two
  statins) moderate. A pair with a shared ingredient is not reported again for their shared classes.

The loaders read the catalog into these shapes in a constant number of queries; `check_plan` answers the
findings for one drug against a patient's other active plans and allergies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models.functions import Lower

from .models import SEVERE, DrugClass, Ingredient, InteractionRule, Medication, MedicationPlan, PlanStatus, Severity

SEVERITY_RANK = {Severity.CONTRAINDICATED: 0, Severity.MAJOR: 1, Severity.MODERATE: 2, Severity.MINOR: 3}
KIND_RANK = {"allergy": 0, "interaction": 1, "duplicate": 2}
ALLERGY_SOURCE = "Patient profile allergies; classes from the medication catalog"
DUPLICATE_SOURCE = "Medication catalog (ingredients and duplicate-therapy classes)"


@dataclass(frozen=True, slots=True)
class Drug:
    """One medication being checked."""

    label: str  # shown in findings: the plan's or the product's name, or the typed name
    ingredient_ids: frozenset[int]
    class_codes: frozenset[str]  # the classes of its ingredients, plus the product's drug_class
    ref: str | None = None  # the plan id (or medication id) it came from, echoed in findings


@dataclass(frozen=True, slots=True)
class Rule:
    """One interaction rule; each side is an ingredient id or a class code."""

    id: int
    ingredient_a: int | None
    class_a: str | None
    ingredient_b: int | None
    class_b: str | None
    severity: str
    summary: str
    advice: str
    source: str


@dataclass(frozen=True, slots=True)
class Lexicon:
    """What allergy strings can name, and the catalog facts the checks need."""

    terms: Mapping[str, tuple[frozenset[int], frozenset[str]]]  # lower-case term -> (ingredient ids, class codes)
    ingredient_names: Mapping[int, str]
    ingredient_classes: Mapping[int, frozenset[str]]
    class_names: Mapping[str, str]
    duplicate_classes: Mapping[str, str]  # code -> name of the duplicate-therapy classes
    allergy_classes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "interaction" | "allergy" | "duplicate"
    severity: str  # a Severity value
    summary: str
    advice: str
    source: str
    drugs: tuple[str, ...]  # labels involved
    refs: tuple[str | None, ...]
    code: str  # "interaction:<rule id>", "allergy:ingredient:<id>" / "allergy:class:<code>", "duplicate:..."

    @property
    def is_severe(self) -> bool:
        return self.severity in SEVERE

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "advice": self.advice,
            "source": self.source,
            "drugs": list(self.drugs),
            "refs": list(self.refs),
            "code": self.code,
            "is_severe": self.is_severe,
        }


# --- The pure core ---------------------------------------------------------------------------------------------


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, without repeats (the same code for the same drugs counts once)."""
    unique: dict[tuple, Finding] = {}
    for finding in findings:
        unique.setdefault((finding.code, finding.refs, finding.drugs), finding)
    return sorted(
        unique.values(),
        key=lambda f: (SEVERITY_RANK.get(f.severity, 9), KIND_RANK.get(f.kind, 9), f.code, f.drugs),
    )


def _matches(drug: Drug, ingredient_id: int | None, class_code: str | None) -> bool:
    if ingredient_id is not None:
        return ingredient_id in drug.ingredient_ids
    return class_code in drug.class_codes


def rule_applies(rule: Rule, first: Drug, second: Drug) -> bool:
    """The rule joins these two drugs, either way round."""
    a_first = _matches(first, rule.ingredient_a, rule.class_a)
    b_first = _matches(first, rule.ingredient_b, rule.class_b)
    a_second = _matches(second, rule.ingredient_a, rule.class_a)
    b_second = _matches(second, rule.ingredient_b, rule.class_b)
    return (a_first and b_second) or (b_first and a_second)


def interaction_findings(drug: Drug, others: Iterable[Drug], rules: Iterable[Rule]) -> list[Finding]:
    """The interactions between `drug` and each of `others`."""
    rules = list(rules)
    findings = []
    for other in others:
        for rule in rules:
            if rule_applies(rule, drug, other):
                findings.append(
                    Finding(
                        kind="interaction",
                        severity=rule.severity,
                        summary=rule.summary,
                        advice=rule.advice,
                        source=rule.source,
                        drugs=(drug.label, other.label),
                        refs=(drug.ref, other.ref),
                        code=f"interaction:{rule.id}",
                    )
                )
    return sort_findings(findings)


def pairwise_findings(drugs: Sequence[Drug], rules: Iterable[Rule]) -> list[Finding]:
    """The interactions within a list of drugs, every pair once."""
    rules = list(rules)
    findings = []
    for index, drug in enumerate(drugs):
        findings.extend(interaction_findings(drug, drugs[index + 1 :], rules))
    return sort_findings(findings)


_ALLERGY_SUFFIX = re.compile(r"\s+(allergy|allergies|allergic)$")


def allergy_terms(allergy: str) -> list[str]:
    """The forms of an allergy string to look up: as written, without "allergy", and without a plural "s"."""
    term = " ".join(allergy.lower().split())
    term = _ALLERGY_SUFFIX.sub("", term)
    forms = [term]
    if term.endswith("s"):
        forms.append(term[:-1])
    return forms


def allergy_findings(drug: Drug, allergies: Iterable[str], lexicon: Lexicon) -> list[Finding]:
    """The drug against the patient's allergy strings (see the module docstring for the rule)."""
    findings = []
    for allergy in allergies:
        if not isinstance(allergy, str) or not allergy.strip():
            continue
        ingredient_ids: frozenset[int] = frozenset()
        class_codes: frozenset[str] = frozenset()
        for term in allergy_terms(allergy):
            if term in lexicon.terms:
                ingredient_ids, class_codes = lexicon.terms[term]
                break
        same = sorted(ingredient_ids & drug.ingredient_ids)
        if same:
            name = lexicon.ingredient_names.get(same[0], allergy)
            findings.append(
                Finding(
                    kind="allergy",
                    severity=Severity.CONTRAINDICATED,
                    summary=f"{drug.label} contains {name}; the patient is allergic to {allergy.strip()}.",
                    advice="Do not give; choose a drug without this ingredient.",
                    source=ALLERGY_SOURCE,
                    drugs=(drug.label,),
                    refs=(drug.ref,),
                    code=f"allergy:ingredient:{same[0]}",
                )
            )
            continue
        related = set(class_codes)
        for ingredient_id in ingredient_ids:
            related |= lexicon.ingredient_classes.get(ingredient_id, frozenset()) & lexicon.allergy_classes
        shared = sorted(related & drug.class_codes)
        if shared:
            code = shared[0]
            findings.append(
                Finding(
                    kind="allergy",
                    severity=Severity.MAJOR,
                    summary=(
                        f"{drug.label} is in the class {lexicon.class_names.get(code, code)}; the patient is allergic "
                        f"to {allergy.strip()}, and cross-reactions within a class are possible."
                    ),
                    advice="Avoid unless a clinician has judged the allergy and the risk of a cross-reaction.",
                    source=ALLERGY_SOURCE,
                    drugs=(drug.label,),
                    refs=(drug.ref,),
                    code=f"allergy:class:{code}",
                )
            )
    return sort_findings(findings)


def duplicate_findings(
    drug: Drug,
    others: Iterable[Drug],
    duplicate_classes: Mapping[str, str],
    *,
    ingredient_names: Mapping[int, str] | None = None,
) -> list[Finding]:
    """The same ingredient twice (major), or two drugs of one duplicate-therapy class (moderate)."""
    names = ingredient_names or {}
    findings = []
    for other in others:
        same = sorted(drug.ingredient_ids & other.ingredient_ids)
        if same:
            for ingredient_id in same:
                name = names.get(ingredient_id, "the same ingredient")
                findings.append(
                    Finding(
                        kind="duplicate",
                        severity=Severity.MAJOR,
                        summary=f"{drug.label} and {other.label} both contain {name}.",
                        advice="Check that both are meant; taking both doubles the dose of the ingredient.",
                        source=DUPLICATE_SOURCE,
                        drugs=(drug.label, other.label),
                        refs=(drug.ref, other.ref),
                        code=f"duplicate:ingredient:{ingredient_id}",
                    )
                )
            continue
        for code in sorted(drug.class_codes & other.class_codes & set(duplicate_classes)):
            findings.append(
                Finding(
                    kind="duplicate",
                    severity=Severity.MODERATE,
                    summary=f"{drug.label} and {other.label} are both in the class {duplicate_classes[code]}.",
                    advice="Two drugs of this class are rarely meant together; check whether one replaces the other.",
                    source=DUPLICATE_SOURCE,
                    drugs=(drug.label, other.label),
                    refs=(drug.ref, other.ref),
                    code=f"duplicate:class:{code}",
                )
            )
    return sort_findings(findings)


def check_drug(
    drug: Drug, *, others: Sequence[Drug], allergies: Iterable[str], rules: Iterable[Rule], lexicon: Lexicon
) -> list[Finding]:
    """Interaction, allergy and duplicate findings for one drug, most severe first."""
    return sort_findings(
        [
            *interaction_findings(drug, others, rules),
            *allergy_findings(drug, allergies, lexicon),
            *duplicate_findings(drug, others, lexicon.duplicate_classes, ingredient_names=lexicon.ingredient_names),
        ]
    )


# --- Loaders ---------------------------------------------------------------------------------------------------


def rules() -> list[Rule]:
    """Every interaction rule, as plain data (one query)."""
    return [
        Rule(
            id=row["id"],
            ingredient_a=row["ingredient_a_id"],
            class_a=row["class_a_id"],
            ingredient_b=row["ingredient_b_id"],
            class_b=row["class_b_id"],
            severity=row["severity"],
            summary=row["summary"],
            advice=row["advice"],
            source=row["source"],
        )
        for row in InteractionRule.objects.order_by("id").values(
            "id",
            "ingredient_a_id",
            "class_a_id",
            "ingredient_b_id",
            "class_b_id",
            "severity",
            "summary",
            "advice",
            "source",
        )
    ]


def lexicon() -> Lexicon:
    """Ingredient and class names, synonyms and memberships (three queries)."""
    terms: dict[str, tuple[set[int], set[str]]] = {}

    def add(term: str, ingredient_id: int | None = None, class_code: str | None = None) -> None:
        term = " ".join(str(term).lower().split())
        if not term:
            return
        ingredient_ids, class_codes = terms.setdefault(term, (set(), set()))
        if ingredient_id is not None:
            ingredient_ids.add(ingredient_id)
        if class_code is not None:
            class_codes.add(class_code)

    class_names: dict[str, str] = {}
    duplicate_classes: dict[str, str] = {}
    allergy_classes: set[str] = set()
    for code, name, synonyms, duplicate in DrugClass.objects.values_list(
        "code", "name", "synonyms", "duplicate_therapy"
    ):
        class_names[code] = name
        if duplicate:
            duplicate_classes[code] = name
        if duplicate or synonyms:
            allergy_classes.add(code)
        for term in [code, name, *(synonyms or [])]:
            add(term, class_code=code)
    ingredient_names: dict[int, str] = {}
    for pk, name, synonyms in Ingredient.objects.values_list("pk", "name", "synonyms"):
        ingredient_names[pk] = name
        for term in [name, *(synonyms or [])]:
            add(term, ingredient_id=pk)
    ingredient_classes: dict[int, set[str]] = {}
    for ingredient_id, code in Ingredient.classes.through.objects.values_list("ingredient_id", "drugclass_id"):
        ingredient_classes.setdefault(ingredient_id, set()).add(code)
    return Lexicon(
        terms={term: (frozenset(ids), frozenset(codes)) for term, (ids, codes) in terms.items()},
        ingredient_names=ingredient_names,
        ingredient_classes={pk: frozenset(codes) for pk, codes in ingredient_classes.items()},
        class_names=class_names,
        duplicate_classes=duplicate_classes,
        allergy_classes=frozenset(allergy_classes),
    )


def _classes_of(ingredient_ids: Iterable[int], drug_class: str | None, lex: Lexicon) -> frozenset[str]:
    codes: set[str] = {drug_class} if drug_class else set()
    for ingredient_id in ingredient_ids:
        codes |= lex.ingredient_classes.get(ingredient_id, frozenset())
    return frozenset(codes)


def _ingredients_by_medication(medication_ids: Iterable[Any]) -> dict[int, set[int]]:
    links: dict[int, set[int]] = {}
    for medication_id, ingredient_id in Medication.ingredients.through.objects.filter(
        medication_id__in=list(medication_ids)
    ).values_list("medication_id", "ingredient_id"):
        links.setdefault(medication_id, set()).add(ingredient_id)
    return links


def drug_for_medication(
    medication: Medication, *, label: str | None = None, ref: str | None = None, lex: Lexicon | None = None
) -> Drug:
    """A catalog product as a Drug."""
    lex = lex or lexicon()
    ingredient_ids = _ingredients_by_medication([medication.pk]).get(medication.pk, set())
    return Drug(
        label=label or medication.name,
        ingredient_ids=frozenset(ingredient_ids),
        class_codes=_classes_of(ingredient_ids, medication.drug_class_id, lex),
        ref=ref if ref is not None else str(medication.pk),
    )


def _resolve_names(names: Iterable[str], lex: Lexicon) -> dict[str, tuple[frozenset[int], str | None]]:
    """Free-text names -> (ingredient ids, product class): an ingredient name or synonym, else a product name
    (case-insensitive), else the longest leading words that name an ingredient ("Ibuprofen 200 mg" -> ibuprofen).
    One query for all the product names."""
    wanted = {" ".join(name.lower().split()) for name in names if name and name.strip()}
    found: dict[str, tuple[frozenset[int], str | None]] = {}
    for term in wanted:
        ingredient_ids, _ = lex.terms.get(term, (frozenset(), frozenset()))
        if ingredient_ids:
            found[term] = (ingredient_ids, None)
    products = wanted - set(found)
    if products:
        rows = list(
            Medication.objects.annotate(lower_name=Lower("name"))
            .filter(lower_name__in=products)
            .values_list("pk", "name", "drug_class_id")
        )
        links = _ingredients_by_medication(pk for pk, _, _ in rows)
        for pk, name, drug_class in rows:
            term = " ".join(name.lower().split())
            if term in products and term not in found and links.get(pk):
                found[term] = (frozenset(links[pk]), drug_class)
    for term in wanted - set(found):
        words = term.split()
        for end in range(len(words) - 1, 0, -1):
            ingredient_ids, _ = lex.terms.get(" ".join(words[:end]), (frozenset(), frozenset()))
            if ingredient_ids:
                found[term] = (ingredient_ids, None)
                break
    return found


def drug_for_name(name: str, *, ref: str | None = None, lex: Lexicon | None = None) -> Drug:
    """A typed name as a Drug; an unknown name has no ingredients and no classes (and so no findings)."""
    lex = lex or lexicon()
    ingredient_ids, drug_class = _resolve_names([name], lex).get(" ".join(name.lower().split()), (frozenset(), None))
    return Drug(
        label=name, ingredient_ids=ingredient_ids, class_codes=_classes_of(ingredient_ids, drug_class, lex), ref=ref
    )


def plan_drugs(rows: Iterable[Mapping[str, Any]], lex: Lexicon) -> dict[str, Drug]:
    """Plans as Drugs, by plan id, from rows of `PLAN_FIELDS` (at most three queries for any number of plans)."""
    rows = list(rows)
    links = _ingredients_by_medication({row["medication_id"] for row in rows if row["medication_id"]})
    by_name = _resolve_names([row["name"] for row in rows if not row["medication_id"]], lex)
    drugs = {}
    for row in rows:
        if row["medication_id"]:
            ingredient_ids = frozenset(links.get(row["medication_id"], set()))
            drug_class = row["medication__drug_class_id"]
        else:
            ingredient_ids, drug_class = by_name.get(" ".join(row["name"].lower().split()), (frozenset(), None))
        drugs[str(row["id"])] = Drug(
            label=row["name"],
            ingredient_ids=ingredient_ids,
            class_codes=_classes_of(ingredient_ids, drug_class, lex),
            ref=str(row["id"]),
        )
    return drugs


PLAN_FIELDS = ("id", "patient_id", "name", "medication_id", "medication__drug_class_id")


def active_plan_drugs(*, patient: Any, exclude_plan_id: Any = None, lex: Lexicon) -> list[Drug]:
    """The patient's active plans as Drugs (at most four queries)."""
    plans = MedicationPlan.objects.filter(patient=patient, status=PlanStatus.ACTIVE)
    if exclude_plan_id is not None:
        plans = plans.exclude(pk=exclude_plan_id)
    return list(plan_drugs(plans.order_by("created_at", "id").values(*PLAN_FIELDS), lex).values())


def patient_allergies(patient: Any) -> list[str]:
    """The profile's allergy strings; none without a profile."""
    from accounts.models import Profile

    allergies = Profile.objects.filter(user=patient).values_list("allergies", flat=True).first()
    return [a for a in (allergies or []) if isinstance(a, str)]


def check_plan(*, patient: Any, drug: Drug, exclude_plan_id: Any = None) -> list[Finding]:
    """The findings for `drug` against the patient's other active plans and allergies, most severe first.

    A constant number of queries whatever the number of plans: rules (1), lexicon (3), plans and their
    ingredients (2 to 4), allergies (1).
    """
    lex = lexicon()
    others = active_plan_drugs(patient=patient, exclude_plan_id=exclude_plan_id, lex=lex)
    return check_drug(drug, others=others, allergies=patient_allergies(patient), rules=rules(), lexicon=lex)


def findings_by_plan(plans: Iterable[MedicationPlan]) -> dict[str, list[Finding]]:
    """The findings of each active plan given against its patient's other active plans and allergies, by plan id.

    For a page of plans of any number of patients, in a constant number of queries (a clinician's list).
    """
    from accounts.models import Profile

    patients = {plan.patient_id for plan in plans if plan.status == PlanStatus.ACTIVE}
    if not patients:
        return {}
    lex = lexicon()
    all_rules = rules()
    rows = list(
        MedicationPlan.objects.filter(patient_id__in=patients, status=PlanStatus.ACTIVE)
        .order_by("created_at", "id")
        .values(*PLAN_FIELDS)
    )
    drugs = plan_drugs(rows, lex)
    by_patient: dict[Any, list[str]] = {}
    for row in rows:
        by_patient.setdefault(row["patient_id"], []).append(str(row["id"]))
    allergies = {
        user_id: [a for a in (values or []) if isinstance(a, str)]
        for user_id, values in Profile.objects.filter(user_id__in=patients).values_list("user_id", "allergies")
    }
    answer = {}
    for plan in plans:
        plan_id = str(plan.pk)
        if plan.status != PlanStatus.ACTIVE or plan_id not in drugs:
            continue
        others = [drugs[other] for other in by_patient.get(plan.patient_id, []) if other != plan_id]
        answer[plan_id] = check_drug(
            drugs[plan_id], others=others, allergies=allergies.get(plan.patient_id, []), rules=all_rules, lexicon=lex
        )
    return answer
