"""Programme rules on recognized standing, with reasons; recognition transitions (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from services.eligibility import domain
from services.eligibility.config import PROGRAMMES_FILE
from services.eligibility.domain import programmes as rules
from services.eligibility.handlers.common import load_catalogue

CATALOGUE = load_catalogue(PROGRAMMES_FILE)
TODAY = date(2026, 6, 1)
NAMES = {"housing_quality": "Housing quality"}


def verdicts(standing: domain.Standing, today: date = TODAY) -> dict[str, tuple[bool, str]]:
    return {p.program_code: (p.eligible, p.reason)
            for p in domain.evaluate(CATALOGUE, standing, today=today, indicator_names=NAMES)}


def eligible(standing: domain.Standing, today: date = TODAY) -> set[str]:
    return {code for code, (ok, _) in verdicts(standing, today).items() if ok}


def recognized(category: str, *, deprived: tuple[str, ...] = (),
               on: date = date(2026, 3, 1)) -> domain.Standing:
    return domain.Standing(category=category, recognized_on=on, deprived=deprived,
                           ruleset_id="VN-MDP-2022")


def test_poor_household():
    assert eligible(recognized("poor")) == {"VBSP-POOR-LOAN", "HEALTH-INSURANCE-SUBSIDY",
                                            "VOCATIONAL-TRAINING", "LIVELIHOOD-MODEL"}
    ok, why = verdicts(recognized("poor"))["VBSP-POOR-LOAN"]
    assert ok and why == "recognized poor household since 2026-03-01"


def test_housing_support_needs_poor_and_housing_quality():
    assert "HOUSING-SUPPORT" in eligible(recognized("poor", deprived=("housing_quality",)))
    ok, why = verdicts(recognized("poor", deprived=("latrine",)))["HOUSING-SUPPORT"]
    assert not ok and why == "not deprived in Housing quality at recognition"
    ok, why = verdicts(recognized("near_poor", deprived=("housing_quality",)))["HOUSING-SUPPORT"]
    assert not ok and "recognized near-poor since 2026-03-01" in why
    assert "for recognized poor households" in why


def test_near_poor_household():
    assert eligible(recognized("near_poor")) == {"VBSP-NEARPOOR-LOAN", "HEALTH-INSURANCE-SUBSIDY",
                                                 "VOCATIONAL-TRAINING", "LIVELIHOOD-MODEL"}
    ok, why = verdicts(recognized("near_poor"))["VBSP-POOR-LOAN"]
    assert not ok and why.startswith("recognized near-poor since 2026-03-01")


@pytest.mark.parametrize("category", ["middle", "not_poor"])
def test_households_above_the_line_that_never_were_poor_get_nothing(category):
    assert eligible(recognized(category)) == set()
    ok, why = verdicts(recognized(category))["VBSP-ESCAPED-LOAN"]
    assert not ok and why == "has not escaped poverty in the last 36 months"


def test_unrecognized_and_archived_households_get_nothing_with_the_reason():
    for code, (ok, why) in verdicts(domain.Standing()).items():
        assert not ok and "no recognized classification yet" in why, code
    archived = domain.Standing(category="poor", recognized_on=TODAY, archived=True)
    assert {why for _, why in verdicts(archived).values()} == {
        "the household is archived in the registry"}


def test_escaping_poverty_opens_36_months_of_just_escaped():
    poor = recognized("poor")
    after, transition = domain.recognize(poor, category="not_poor", deprived=(),
                                         ruleset_id="VN-MDP-2022", on=date(2026, 9, 15),
                                         just_escaped_months=36)
    assert transition == domain.Transition("escaped_poverty", "poor", "not_poor",
                                           date(2026, 9, 15), date(2029, 9, 15))
    v = verdicts(after, date(2026, 9, 15))
    assert v["VBSP-ESCAPED-LOAN"] == (True, "escaped poverty on 2026-09-15: 'just escaped' "
                                            "until 2029-09-15 (36 months)")
    assert v["VBSP-POOR-LOAN"][0] is False and "recognized not poor" in v["VBSP-POOR-LOAN"][1]
    assert v["LIVELIHOOD-MODEL"][0] is True
    assert eligible(after, date(2029, 9, 15)) == {"VBSP-ESCAPED-LOAN", "LIVELIHOOD-MODEL"}
    ok, why = verdicts(after, date(2029, 9, 16))["VBSP-ESCAPED-LOAN"]
    assert not ok and why.endswith("'just escaped' ended on 2029-09-15")


def test_poor_to_near_poor_is_escaped_poverty_and_then_escaped_near_poverty():
    near, t1 = domain.recognize(recognized("poor"), category="near_poor", deprived=(),
                                ruleset_id="VN-MDP-2022", on=date(2026, 12, 1),
                                just_escaped_months=36)
    assert t1 is not None and t1.kind == "escaped_poverty"
    assert eligible(near, date(2026, 12, 2)) >= {"VBSP-NEARPOOR-LOAN", "VBSP-ESCAPED-LOAN"}
    middle, t2 = domain.recognize(near, category="middle", deprived=(), ruleset_id="VN-MDP-2022",
                                  on=date(2027, 12, 1), just_escaped_months=36)
    assert t2 is not None and t2.kind == "escaped_near_poverty"
    assert middle.just_escaped_until == date(2029, 12, 1)  # still counted from leaving poverty


def test_falling_back_into_poverty_ends_just_escaped():
    escaped, _ = domain.recognize(recognized("poor"), category="not_poor", deprived=(),
                                  ruleset_id="VN-MDP-2022", on=date(2026, 9, 15),
                                  just_escaped_months=36)
    again, t = domain.recognize(escaped, category="poor", deprived=(), ruleset_id="VN-MDP-2022",
                                on=date(2027, 9, 15), just_escaped_months=36)
    assert t is None and again.just_escaped_until is None
    ok, why = verdicts(again, date(2027, 9, 16))["VBSP-ESCAPED-LOAN"]
    assert not ok and why.startswith("still recognized poor")


def test_near_poor_to_not_poor_never_poor_is_not_just_escaped():
    after, t = domain.recognize(recognized("near_poor"), category="not_poor", deprived=(),
                                ruleset_id="VN-MDP-2022", on=date(2026, 9, 15),
                                just_escaped_months=36)
    assert t is not None and t.kind == "escaped_near_poverty"
    assert eligible(after, date(2026, 9, 16)) == set()


def test_incomplete_cannot_be_recognized():
    with pytest.raises(ValueError):
        domain.recognize(domain.Standing(), category="incomplete", deprived=(), ruleset_id="x",
                         on=TODAY, just_escaped_months=36)


def test_add_months_clips_to_month_end():
    assert domain.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert domain.add_months(date(2024, 2, 29), 36) == date(2027, 2, 28)


@pytest.mark.parametrize(("doc", "words"), [
    ({"programmes": []}, "just_escaped_months"),
    ({"just_escaped_months": 36, "programmes": [{"code": "X", "rule": {"category": ["rich"]}}]},
     "X.rule.category"),
    ({"just_escaped_months": 36, "programmes": [{"code": "X", "rule": {"lucky": True}}]},
     "unknown rule 'lucky'"),
    ({"just_escaped_months": 36, "programmes": [{"code": "X", "rule": {"category": ["poor"]}},
                                                {"code": "X", "rule": {"category": ["poor"]}}]},
     "defined twice"),
])
def test_programme_file_validation(doc, words):
    with pytest.raises(rules.ProgrammeError, match=words):
        rules.parse(doc)
