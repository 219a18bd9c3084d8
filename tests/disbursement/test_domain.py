"""Pure rules: status verdicts, loan schedules and positions, programme checks (no I/O)."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
import yaml

from services.disbursement import domain
from services.disbursement.config import PROGRAMMES_FILE
from services.disbursement.domain.programmes import ApplicantFacts


@pytest.mark.parametrize(("current", "incoming", "history", "action", "words"), [
    ("sent", "accepted", ["approved", "sent"], "apply", ""),
    ("sent", "rejected", ["approved", "sent"], "apply", ""),
    ("accepted", "settled", ["sent", "accepted"], "apply", ""),
    ("accepted", "failed", ["sent", "accepted"], "apply", ""),
    ("settled", "reversed", ["accepted", "settled"], "apply", ""),
    ("accepted", "accepted", ["sent", "accepted"], "duplicate", ""),
    ("settled", "accepted", ["sent", "accepted", "settled"], "duplicate", ""),
    ("sent", "settled", ["approved", "sent"], "refuse", "out of order: sent → settled"),
    ("rejected", "settled", ["sent", "rejected"], "refuse", "illegal transition"),
    ("settled", "failed", ["accepted", "settled"], "refuse", "illegal transition"),
    ("approved", "accepted", ["approved"], "refuse", "never sent"),
    ("on_hold", "settled", ["approved", "on_hold"], "refuse", "never sent"),
    ("cancelled", "accepted", ["approved", "cancelled"], "refuse", "never sent"),
])
def test_bank_status_verdicts(current, incoming, history, action, words):
    verdict = domain.judge_bank_status(current=current, incoming=incoming, history=history,
                                       is_loan=False)
    assert verdict.action == action
    assert words in verdict.reason


def test_repayments_only_for_settled_loans():
    assert domain.judge_bank_status(current="settled", incoming="repayment_received",
                                    history=[], is_loan=True).action == "repayment"
    assert domain.judge_bank_status(current="accepted", incoming="repayment_received",
                                    history=[], is_loan=True).action == "refuse"
    assert domain.judge_bank_status(current="settled", incoming="repayment_received",
                                    history=[], is_loan=False).action == "refuse"


def test_schedule_is_monthly_interest_and_principal_at_term():
    plan = domain.schedule(principal_vnd=100_000_000, annual_rate_pct=6.6, term_months=12,
                           disbursed_on=date(2026, 1, 31))
    assert len(plan) == 12
    assert {i.interest_vnd for i in plan} == {550_000}
    assert [i.principal_vnd for i in plan[:-1]] == [0] * 11 and plan[-1].principal_vnd == 100_000_000
    assert plan[0].due_date == date(2026, 2, 28)  # clipped to the month's end
    assert plan[-1].due_date == date(2027, 1, 31)


def test_loan_position_allocates_repayments_and_flags_overdue_at_130_percent():
    plan = domain.schedule(principal_vnd=12_000_000, annual_rate_pct=10.0, term_months=6,
                           disbursed_on=date(2026, 1, 10))
    on_time = domain.loan_position(instalments=plan, repaid_vnd=200_000, annual_rate_pct=10.0,
                                   today=date(2026, 3, 9))
    assert on_time.instalments_paid == 2 and not on_time.overdue
    assert on_time.next_due_date == date(2026, 4, 10)
    late = domain.loan_position(instalments=plan, repaid_vnd=100_000, annual_rate_pct=10.0,
                                today=date(2026, 4, 11))
    # one month paid; March and April unpaid, late since 10 March
    assert late.overdue and late.overdue_amount_vnd == 200_000 and late.overdue_days == 32
    assert late.overdue_interest_vnd == round(200_000 * 0.13 * 32 / 365)
    repaid = domain.loan_position(instalments=plan, repaid_vnd=12_600_000, annual_rate_pct=10.0,
                                  today=date(2030, 1, 1))
    assert repaid.outstanding_principal_vnd == 0 and repaid.next_due_date is None


def test_shipped_programmes_match_the_policy():
    programmes = domain.parse_programmes(yaml.safe_load(Path(PROGRAMMES_FILE).read_text()))
    poor, near, escaped = (programmes[c] for c in ("VBSP-POOR-LOAN", "VBSP-NEARPOOR-LOAN",
                                                   "VBSP-ESCAPED-LOAN"))
    assert (poor.annual_rate_pct, poor.ceiling_vnd, poor.max_term_months) == (6.6, 100_000_000, 120)
    assert near.annual_rate_pct == 7.92 and "max_term_months" in near.unconfirmed
    assert (escaped.annual_rate_pct, escaped.max_term_months) == (8.25, 60)
    assert poor.overdue_rate_pct == 8.58
    assert {p.requires_eligibility for p in programmes.values() if not p.is_credit} == {
        "LIVELIHOOD-MODEL", "VOCATIONAL-TRAINING"}
    assert {p.support_type for p in programmes.values()} == {"loan", "cash_grant", "in_kind",
                                                            "voucher"}
    assert all(p.partner == "vbsp" and p.default_commune_budget_vnd > 0
               for p in programmes.values())


def test_a_loan_needs_a_group_and_livelihood_support_has_no_term():
    programmes = domain.parse_programmes(yaml.safe_load(Path(PROGRAMMES_FILE).read_text()))
    facts = ApplicantFacts(known=True, eligible=True)
    codes = [v.code for v in domain.application_violations(
        programme=programmes["VBSP-POOR-LOAN"], amount_vnd=1, term_months=12, group_id=None,
        facts=facts)]
    assert codes == ["group_required"]
    codes = [v.code for v in domain.application_violations(
        programme=programmes["LIVELIHOOD-SEED"], amount_vnd=1, term_months=12, group_id=None,
        facts=facts)]
    assert codes == ["term_not_applicable"]


def test_beneficiary_reference_is_stable_and_opaque():
    a = domain.beneficiary_reference(key="k", household_id="h-1")
    assert a == domain.beneficiary_reference(key="k", household_id="h-1")
    assert a != domain.beneficiary_reference(key="other", household_id="h-1")
    assert a.startswith("BR-") and "h-1" not in a


def test_the_reconciliation_csv_neutralises_formulas_but_keeps_negative_amounts():
    from services.disbursement.handlers.ledger import reconciliation_csv

    report = {"by_status": [{"status": "settled", "count": 2, "amount_vnd": 30_000_000,
                             "settled_amount_vnd": 30_000_000}],
              "totals": {"count": 2, "amount_vnd": 30_000_000, "settled_amount_vnd": 30_000_000},
              "mismatches": [{"kind": "refused_status", "instruction_id": "=1+2",
                              "partner": "@vbsp", "amount_vnd": None,
                              "partner_amount_vnd": -5_000, "detail": "-cmd|' /C calc'!A0"}]}
    rows = list(csv.reader(io.StringIO(reconciliation_csv(report))))
    mismatch = dict(zip(rows[0], rows[-1], strict=True))
    assert mismatch["instruction_id"] == "'=1+2"
    assert mismatch["partner"] == "'@vbsp"
    assert mismatch["detail"] == "'-cmd|' /C calc'!A0"
    assert mismatch["partner_amount_vnd"] == "-5000"  # a number stays a number
