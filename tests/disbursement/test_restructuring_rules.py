"""Restructuring rules without I/O: the shipped options, the checks of a request, the new
schedule of each option."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from services.disbursement import domain
from services.disbursement.config import RESTRUCTURING_FILE

OPTIONS = domain.parse_options(yaml.safe_load(RESTRUCTURING_FILE.read_text(encoding="utf-8")))


def test_the_shipped_options_are_marked_unconfirmed_with_a_note_since_policy_has_no_figure():
    assert set(OPTIONS) == {"extension", "interest_freeze"}
    for option in OPTIONS.values():
        assert option.unconfirmed == ("max_months",) and "POLICY.md" in option.notes


@pytest.mark.parametrize(("doc", "message"), [
    ({"options": [{"code": "write_off", "max_months": 3}]}, "must be one of"),
    ({"options": [{"code": "extension", "max_months": 0}]}, "positive integer"),
    ({"options": [{"code": "extension", "max_months": 6}]}, "missing: interest_freeze"),
])
def test_a_bad_options_file_stops_the_service(doc, message):
    with pytest.raises(ValueError, match=message):
        domain.parse_options(doc)


def test_every_broken_rule_names_its_field():
    got = domain.request_violations(option=OPTIONS["extension"], months=13, loan_status="repaid",
                                    outstanding_principal_vnd=0, exposed=False, shock_id="sh-1")
    assert [(v.field, v.code) for v in got] == [("instruction_id", "loan_not_outstanding"),
                                                ("shock_id", "not_exposed"),
                                                ("months", "above_max_months")]
    assert domain.request_violations(option=OPTIONS["extension"], months=12,
                                     loan_status="active", outstanding_principal_vnd=1,
                                     exposed=True, shock_id="sh-1") == []


def test_an_extension_moves_maturity_and_a_freeze_zeroes_the_interest_due_in_its_months():
    ext = domain.new_schedule(option="extension", months=6, term_months=36,
                              disbursed_on=date(2026, 1, 31), maturity_date=date(2029, 1, 31),
                              today=date(2026, 10, 20))
    assert (ext.term_months, ext.maturity_date) == (42, date(2029, 7, 31))
    freeze = domain.new_schedule(option="interest_freeze", months=3, term_months=36,
                                 disbursed_on=date(2026, 1, 31), maturity_date=date(2029, 1, 31),
                                 today=date(2026, 10, 20))
    assert (freeze.interest_frozen_from, freeze.interest_frozen_until) == (
        date(2026, 10, 20), date(2027, 1, 20))
    plan = domain.schedule(principal_vnd=12_000_000, annual_rate_pct=10, term_months=36,
                           disbursed_on=date(2026, 1, 31), frozen_from=date(2026, 10, 20),
                           frozen_until=date(2027, 1, 20))
    assert [i.due_date for i in plan if i.interest_vnd == 0] == [
        date(2026, 10, 31), date(2026, 11, 30), date(2026, 12, 31)]
    assert sum(i.interest_vnd for i in plan) == 33 * 100_000
