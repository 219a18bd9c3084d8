"""What the fuzzer found, each pinned by the request that was a server error."""

from __future__ import annotations

from tests.support.apps import auth


async def test_reconciliation_csv_of_a_programme_code_outside_latin1_is_a_spreadsheet(platform):
    # Was a 500: the programme code went verbatim into Content-Disposition, which is latin-1.
    r = await platform["disbursement"].client.get(
        "/v1/reconciliation", params={"programme_code": "Chương trình\"\r\n", "format": "csv"},
        headers=auth("national_admin"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="reconciliation-Ch_')
    assert disposition.count('"') == 2
