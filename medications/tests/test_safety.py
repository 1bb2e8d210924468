"""The safety checks' pure core: interactions both ways round and at class level, allergies, duplicate therapy."""

from medications.safety import (
    Drug,
    Lexicon,
    Rule,
    allergy_findings,
    check_drug,
    duplicate_findings,
    interaction_findings,
    pairwise_findings,
)

WARFARIN, IBUPROFEN, NAPROXEN, AMOXICILLIN, AMPICILLIN, ATORVASTATIN, SIMVASTATIN, METFORMIN, CLARITHROMYCIN = range(
    1, 10
)
CLASSES = {
    WARFARIN: frozenset({"anticoagulant"}),
    IBUPROFEN: frozenset({"nsaid"}),
    NAPROXEN: frozenset({"nsaid"}),
    AMOXICILLIN: frozenset({"penicillin"}),
    AMPICILLIN: frozenset({"penicillin"}),
    ATORVASTATIN: frozenset({"statin"}),
    SIMVASTATIN: frozenset({"statin"}),
    METFORMIN: frozenset({"biguanide"}),
    CLARITHROMYCIN: frozenset({"macrolide", "cyp3a4-strong-inhibitor"}),
}
NAMES = {
    WARFARIN: "warfarin",
    IBUPROFEN: "ibuprofen",
    NAPROXEN: "naproxen",
    AMOXICILLIN: "amoxicillin",
    AMPICILLIN: "ampicillin",
    ATORVASTATIN: "atorvastatin",
    SIMVASTATIN: "simvastatin",
    METFORMIN: "metformin",
    CLARITHROMYCIN: "clarithromycin",
}
WARFARIN_NSAID = Rule(7, WARFARIN, None, None, "nsaid", "major", "Bleeding risk.", "Avoid.", "ONC list")
SIMVASTATIN_CYP3A4 = Rule(
    8, SIMVASTATIN, None, None, "cyp3a4-strong-inhibitor", "contraindicated", "Myopathy.", "Do not combine.", "ONC"
)
RULES = [WARFARIN_NSAID, SIMVASTATIN_CYP3A4]
DUPLICATE_CLASSES = {"statin": "HMG-CoA Reductase Inhibitor", "nsaid": "NSAID", "anticoagulant": "Anticoagulant"}
LEXICON = Lexicon(
    terms={
        **{name: (frozenset({pk}), frozenset()) for pk, name in NAMES.items()},
        "amoxil": (frozenset({AMOXICILLIN}), frozenset()),
        "penicillin": (frozenset(), frozenset({"penicillin"})),
        "penicillins": (frozenset(), frozenset({"penicillin"})),
        "pcn": (frozenset(), frozenset({"penicillin"})),
        "cyp3a4-strong-inhibitor": (frozenset(), frozenset({"cyp3a4-strong-inhibitor"})),
    },
    ingredient_names=NAMES,
    ingredient_classes=CLASSES,
    class_names={"penicillin": "Penicillin-class Antibacterial", "statin": "HMG-CoA Reductase Inhibitor"},
    duplicate_classes=DUPLICATE_CLASSES,
    allergy_classes=frozenset({"penicillin", "statin", "nsaid", "anticoagulant", "macrolide"}),
)


def drug(label: str, *ingredients: int, ref: str | None = None, drug_class: str | None = None) -> Drug:
    classes = set().union(*(CLASSES[i] for i in ingredients)) | ({drug_class} if drug_class else set())
    return Drug(label=label, ingredient_ids=frozenset(ingredients), class_codes=frozenset(classes), ref=ref)


def test_warfarin_with_ibuprofen_is_found_through_the_nsaid_class():
    findings = interaction_findings(
        drug("Warfarin 5 mg", WARFARIN, ref="w"), [drug("Advil", IBUPROFEN, ref="i")], RULES
    )

    assert [(f.kind, f.severity, f.code, f.drugs, f.refs) for f in findings] == [
        ("interaction", "major", "interaction:7", ("Warfarin 5 mg", "Advil"), ("w", "i"))
    ]
    assert findings[0].summary == "Bleeding risk."
    assert findings[0].advice == "Avoid."
    assert findings[0].source == "ONC list"
    assert findings[0].is_severe is True


def test_ibuprofen_with_warfarin_is_found_the_other_way_round():
    findings = interaction_findings(drug("Advil", IBUPROFEN, ref="i"), [drug("Warfarin", WARFARIN, ref="w")], RULES)

    assert [(f.code, f.drugs, f.refs) for f in findings] == [("interaction:7", ("Advil", "Warfarin"), ("i", "w"))]


def test_a_class_side_matches_a_product_class_and_an_ingredient_class():
    clarithromycin = drug("Biaxin", CLARITHROMYCIN)
    findings = interaction_findings(drug("Zocor", SIMVASTATIN), [clarithromycin], RULES)

    assert [(f.severity, f.code) for f in findings] == [("contraindicated", "interaction:8")]


def test_unrelated_drugs_have_no_findings():
    metformin = drug("Metformin", METFORMIN)
    amoxicillin = drug("Amoxicillin", AMOXICILLIN)

    assert interaction_findings(metformin, [amoxicillin], RULES) == []
    assert duplicate_findings(metformin, [amoxicillin], DUPLICATE_CLASSES) == []
    assert allergy_findings(metformin, ["Penicillin", "peanuts"], LEXICON) == []
    assert check_drug(metformin, others=[amoxicillin], allergies=["penicillin"], rules=RULES, lexicon=LEXICON) == []


def test_pairwise_findings_cover_every_pair_once_most_severe_first():
    drugs = [
        drug("Warfarin", WARFARIN, ref="1"),
        drug("Simvastatin", SIMVASTATIN, ref="2"),
        drug("Ibuprofen", IBUPROFEN, ref="3"),
        drug("Clarithromycin", CLARITHROMYCIN, ref="4"),
    ]

    findings = pairwise_findings(drugs, RULES)

    assert [(f.severity, f.code, f.refs) for f in findings] == [
        ("contraindicated", "interaction:8", ("2", "4")),
        ("major", "interaction:7", ("1", "3")),
    ]


def test_a_penicillin_allergy_warns_for_amoxicillin():
    amoxicillin = drug("Amoxicillin 500 MG Oral Capsule", AMOXICILLIN, ref="p")

    findings = allergy_findings(amoxicillin, ["Penicillin"], LEXICON)

    assert [(f.kind, f.severity, f.code, f.drugs, f.refs) for f in findings] == [
        ("allergy", "major", "allergy:class:penicillin", ("Amoxicillin 500 MG Oral Capsule",), ("p",))
    ]
    assert "Penicillin-class Antibacterial" in findings[0].summary
    assert findings[0].is_severe is True


def test_allergy_words_are_matched_case_insensitively_with_plurals_and_the_word_allergy():
    amoxicillin = drug("Amoxicillin", AMOXICILLIN)

    for written in ("PENICILLINS", "pcn", "Penicillin allergy", "  penicillin  "):
        assert [f.code for f in allergy_findings(amoxicillin, [written], LEXICON)] == ["allergy:class:penicillin"]


def test_an_allergy_to_the_ingredient_itself_is_contraindicated_and_reported_once():
    amoxicillin = drug("Amoxil", AMOXICILLIN)

    findings = allergy_findings(amoxicillin, ["amoxicillin", "Amoxil"], LEXICON)

    assert [(f.severity, f.code) for f in findings] == [("contraindicated", f"allergy:ingredient:{AMOXICILLIN}")]
    assert findings[0].summary == "Amoxil contains amoxicillin; the patient is allergic to amoxicillin."


def test_an_ingredient_allergy_warns_for_another_ingredient_of_its_allergy_class_only():
    ampicillin = drug("Ampicillin", AMPICILLIN)
    simvastatin = drug("Simvastatin", SIMVASTATIN)

    assert [(f.severity, f.code) for f in allergy_findings(ampicillin, ["amoxicillin"], LEXICON)] == [
        ("major", "allergy:class:penicillin")
    ]
    # Clarithromycin's mechanistic group (CYP3A4 inhibitors) is no allergy class: simvastatin is not flagged.
    assert allergy_findings(simvastatin, ["clarithromycin"], LEXICON) == []


def test_two_statins_are_a_duplicate_therapy():
    findings = duplicate_findings(
        drug("Atorvastatin", ATORVASTATIN, ref="a"), [drug("Simvastatin", SIMVASTATIN, ref="s")], DUPLICATE_CLASSES
    )

    assert [(f.kind, f.severity, f.code, f.refs) for f in findings] == [
        ("duplicate", "moderate", "duplicate:class:statin", ("a", "s"))
    ]
    assert findings[0].summary == "Atorvastatin and Simvastatin are both in the class HMG-CoA Reductase Inhibitor."
    assert findings[0].is_severe is False


def test_the_same_ingredient_twice_is_a_major_duplicate_not_also_a_class_duplicate():
    findings = duplicate_findings(
        drug("Advil", IBUPROFEN, ref="1"),
        [drug("Motrin 800", IBUPROFEN, ref="2")],
        DUPLICATE_CLASSES,
        ingredient_names=NAMES,
    )

    assert [(f.severity, f.code, f.summary) for f in findings] == [
        ("major", f"duplicate:ingredient:{IBUPROFEN}", "Advil and Motrin 800 both contain ibuprofen.")
    ]


def test_check_drug_answers_every_kind_most_severe_first_without_repeats():
    new = drug("Ibuprofen", IBUPROFEN, ref=None)
    others = [
        drug("Warfarin", WARFARIN, ref="w"),
        drug("Naproxen", NAPROXEN, ref="n"),
        drug("Naproxen", NAPROXEN, ref="n"),
    ]

    findings = check_drug(new, others=others, allergies=["ibuprofen", "IBUPROFEN"], rules=RULES, lexicon=LEXICON)

    assert [(f.kind, f.severity, f.code, f.refs) for f in findings] == [
        ("allergy", "contraindicated", f"allergy:ingredient:{IBUPROFEN}", (None,)),
        ("interaction", "major", "interaction:7", (None, "w")),
        ("duplicate", "moderate", "duplicate:class:nsaid", (None, "n")),
    ]


def test_a_drug_with_no_known_ingredients_has_no_findings():
    unknown = Drug(label="Grandma's tonic", ingredient_ids=frozenset(), class_codes=frozenset())

    assert (
        check_drug(unknown, others=[drug("Warfarin", WARFARIN)], allergies=["penicillin"], rules=RULES, lexicon=LEXICON)
        == []
    )


def test_a_class_with_class_rule_matches_either_drug_first():
    maoi_ssri = Rule(9, None, "maoi", None, "ssri", "contraindicated", "Serotonin syndrome.", "Do not combine.", "ONC")
    phenelzine = Drug("Nardil", frozenset({100}), frozenset({"maoi"}), ref="m")
    sertraline = Drug("Zoloft", frozenset({101}), frozenset({"ssri"}), ref="s")

    assert [f.refs for f in interaction_findings(sertraline, [phenelzine], [maoi_ssri])] == [("s", "m")]
    assert [f.refs for f in interaction_findings(phenelzine, [sertraline], [maoi_ssri])] == [("m", "s")]
    assert interaction_findings(sertraline, [sertraline], [maoi_ssri]) == []


def test_one_rule_against_two_other_drugs_is_two_findings():
    findings = interaction_findings(
        drug("Warfarin", WARFARIN, ref="w"),
        [drug("Advil", IBUPROFEN, ref="i"), drug("Aleve", NAPROXEN, ref="n")],
        RULES,
    )

    assert [(f.code, f.refs) for f in findings] == [("interaction:7", ("w", "i")), ("interaction:7", ("w", "n"))]
