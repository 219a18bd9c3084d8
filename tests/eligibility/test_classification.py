"""Both shipped rule sets walked at every boundary (pure domain, no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from services.eligibility import domain
from services.eligibility.config import PROGRAMMES_FILE, RULESETS_DIR
from services.eligibility.handlers.common import load_catalogue, load_rulebook

BOOK = load_rulebook([RULESETS_DIR])
R2022 = BOOK.get("VN-MDP-2022")
R2027 = BOOK.get("VN-MDP-2027")


def deprivations(rs: domain.RuleSet, count: int) -> dict[str, bool | None]:
    """Deprived in the first `count` indicators of the rule set, not deprived in the rest."""
    return {code: n < count for n, code in enumerate(rs.indicator_codes)}


def classify(rs: domain.RuleSet, area: str, income: int, count: int) -> str:
    return domain.classify(rs, area_type=area, income_per_capita_vnd=income,
                           deprivations=deprivations(rs, count)).category


LINES = [  # rule set, area, poverty line, middle line
    (R2022, "rural", 1_500_000, 2_250_000),
    (R2022, "urban", 2_000_000, 3_000_000),
    (R2027, "rural", 2_200_000, 3_300_000),
    (R2027, "urban", 2_800_000, 4_200_000),
]


@pytest.mark.parametrize(("rs", "area", "line", "middle"), LINES,
                         ids=[f"{r.id}-{a}" for r, a, _, _ in LINES])
def test_poverty_line_boundary_at_below_and_above(rs, area, line, middle):
    assert rs.line(area) == line and rs.middle_line(area) == middle
    # at the line counts as below it (income ≤ line)
    assert classify(rs, area, line, 3) == "poor"
    assert classify(rs, area, line - 1, 3) == "poor"
    assert classify(rs, area, line + 1, 3) == "middle"
    assert classify(rs, area, line, 2) == "near_poor"
    assert classify(rs, area, line - 1, 2) == "near_poor"
    assert classify(rs, area, line + 1, 2) == "middle"


@pytest.mark.parametrize(("rs", "area", "line", "middle"), LINES,
                         ids=[f"{r.id}-{a}" for r, a, _, _ in LINES])
def test_middle_band_boundary_at_below_and_above(rs, area, line, middle):
    assert classify(rs, area, middle, 0) == "middle"
    assert classify(rs, area, middle - 1, 0) == "middle"
    assert classify(rs, area, middle + 1, 0) == "not_poor"
    # the rule is AND: above the line no deprivation count makes a household poor
    assert classify(rs, area, middle + 1, len(rs.indicators)) == "not_poor"
    assert classify(rs, area, line + 1, len(rs.indicators)) == "middle"


@pytest.mark.parametrize("rs", [R2022, R2027], ids=["2022", "2027"])
def test_two_versus_three_deprivations(rs):
    line = rs.line("rural")
    assert rs.deprivation_threshold == 3
    for count, expected in ((0, "near_poor"), (2, "near_poor"), (3, "poor"), (4, "poor")):
        decision = domain.classify(rs, area_type="rural", income_per_capita_vnd=line,
                                   deprivations=deprivations(rs, count))
        assert decision.category == expected
        assert decision.explanation.deprivation_count == count
        assert decision.explanation.threshold == 3


def test_rural_versus_urban_same_income():
    # 1,800,000: above the 2022 rural line, below the urban one
    assert classify(R2022, "rural", 1_800_000, 3) == "middle"
    assert classify(R2022, "urban", 1_800_000, 3) == "poor"
    # 2,500,000 under 2027: above rural 2,200,000, below urban 2,800,000
    assert classify(R2027, "rural", 2_500_000, 2) == "middle"
    assert classify(R2027, "urban", 2_500_000, 2) == "near_poor"


def test_missing_indicator_is_incomplete_at_or_below_the_line_and_named():
    answers = deprivations(R2022, 3)
    del answers["telecom"]
    answers["latrine"] = None
    d = domain.classify(R2022, area_type="rural", income_per_capita_vnd=1_500_000,
                        deprivations=answers)
    assert d.category == "incomplete"
    assert d.explanation.missing == ["latrine", "telecom"]
    assert "lacks latrine, telecom" in d.explanation.text
    # above the line the AND rule already decides; what is missing is still listed
    above = domain.classify(R2022, area_type="rural", income_per_capita_vnd=1_500_001,
                            deprivations=answers)
    assert above.category == "middle" and above.explanation.missing == ["latrine", "telecom"]


def test_a_2022_survey_lacks_the_2027_indicators():
    answers = deprivations(R2022, 3)
    d = domain.classify(R2027, area_type="rural", income_per_capita_vnd=2_000_000,
                        deprivations=answers)
    assert d.category == "incomplete"
    assert d.explanation.missing == ["waste_treatment", "digital_services"]
    assert d.explanation.ignored == ["information_access"]


@pytest.mark.parametrize(("day", "expected"), [
    (date(2022, 1, 1), "VN-MDP-2022"), (date(2026, 6, 15), "VN-MDP-2022"),
    (date(2026, 12, 31), "VN-MDP-2022"), (date(2027, 1, 1), "VN-MDP-2027"),
    (date(2030, 12, 31), "VN-MDP-2027"),
])
def test_rule_set_is_chosen_by_survey_date(day, expected):
    assert BOOK.select(day).id == expected


def test_same_household_2026_versus_2027_survey_date():
    # 2,000,000 rural with 3 deprivations: middle under 2022 (line 1.5M), poor under 2027 (2.2M)
    answers = {c: c in ("health_insurance", "housing_area", "latrine")
               for c in BOOK.indicator_codes}
    results = {}
    for day in (date(2026, 12, 31), date(2027, 1, 1)):
        rs = BOOK.select(day)
        results[rs.id] = domain.classify(rs, area_type="rural", income_per_capita_vnd=2_000_000,
                                         deprivations=answers).category
    assert results == {"VN-MDP-2022": "middle", "VN-MDP-2027": "poor"}


@pytest.mark.parametrize("day", [date(2021, 12, 31), date(2031, 1, 1)])
def test_no_rule_set_outside_the_effective_dates(day):
    with pytest.raises(domain.NoRuleSet):
        BOOK.select(day)


def test_golden_path_household_explained():
    answers = {c: c in ("health_insurance", "housing_area", "latrine") for c in R2022.indicator_codes}
    d = domain.classify(BOOK.select(date(2026, 3, 1)), area_type="rural",
                        income_per_capita_vnd=1_200_000, deprivations=answers)
    e = d.explanation
    assert d.category == "poor" and e.ruleset_id == "VN-MDP-2022"
    assert (e.income_per_capita_vnd, e.income_line_vnd) == (1_200_000, 1_500_000)
    assert e.deprived == [
        {"code": "health_insurance", "name_vi": "Bảo hiểm y tế", "name_en": "Health insurance"},
        {"code": "housing_area", "name_vi": "Diện tích nhà ở bình quân đầu người",
         "name_en": "Housing area per person"},
        {"code": "latrine", "name_vi": "Nhà tiêu hợp vệ sinh", "name_en": "Hygienic latrine"}]
    assert e.deprivation_count == 3 and e.threshold == 3 and e.missing == []
    assert "1,200,000 VND" in e.text and "≤ poverty line 1,500,000 VND" in e.text
    assert "Decree 07/2021/ND-CP" in e.text and e.text.endswith("→ poor.")
    later = domain.classify(R2022, area_type="rural", income_per_capita_vnd=2_600_000,
                            deprivations=answers)
    assert later.category == "not_poor"
    assert later.fingerprint(survey_id="s2") != d.fingerprint(survey_id="s1")
    assert d.fingerprint(survey_id="s1") == domain.classify(
        R2022, area_type="rural", income_per_capita_vnd=1_200_000,
        deprivations=dict(answers)).fingerprint(survey_id="s1")


def test_programmes_file_loads():
    catalogue = load_catalogue(PROGRAMMES_FILE)
    assert catalogue.just_escaped_months == 36
    assert [p.code for p in catalogue.programmes] == [
        "VBSP-POOR-LOAN", "VBSP-NEARPOOR-LOAN", "VBSP-ESCAPED-LOAN", "HEALTH-INSURANCE-SUBSIDY",
        "HOUSING-SUPPORT", "VOCATIONAL-TRAINING", "LIVELIHOOD-MODEL"]


def test_outcome_is_the_category_under_the_same_rule_set_area_and_survey():
    answers = {c: c in ("health_insurance", "housing_area", "latrine") for c in R2022.indicator_codes}

    def outcome(rs=R2022, area="rural", income=1_200_000, survey="s1"):
        return domain.classify(rs, area_type=area, income_per_capita_vnd=income,
                               deprivations=answers).fingerprint(survey_id=survey)

    assert outcome() == outcome(income=1_400_000)  # still poor: nothing new to post
    assert outcome() != outcome(income=1_600_000)  # middle now
    assert outcome() != outcome(area="urban")  # another line applies
    assert outcome() != outcome(survey="s2")  # a new survey is a new assessment
    assert outcome() != outcome(rs=R2027)
