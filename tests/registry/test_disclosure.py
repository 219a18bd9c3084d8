"""Least privilege: officers see members' national IDs, birth dates and phones; commune chairs,
supervisors and auditors see the national ID masked, the birth year and no phone — in the
household, the listing, the history and an import's error list."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.registry.conftest import HANOI, HANOI_WARD, body, nid, officer, person
from tests.registry.test_imports import NDJSON, line, run_import
from tests.support.apps import auth

READERS = ["commune_chair", "supervisor", "auditor"]
WRITERS = ["national_admin", "province_officer", "commune_officer"]
SCOPE = {"national_admin": "VN", "auditor": "VN", "province_officer": HANOI}
PHONE, NEW_PHONE, BORN = "0912345678", "0987654321", "1980-03-04"


def as_role(role: str) -> dict[str, str]:
    """A token of `role` whose scope covers Hà Nội's ward 01001."""
    return auth(role, SCOPE.get(role, HANOI_WARD))


@pytest.fixture(scope="module")
async def household(registry) -> dict:
    """A household with a phone (changed once) and a member whose national ID changed."""
    village = f"Thôn Riêng Tư {uuid.uuid4().hex[:6]}"
    head, spouse = person(date_of_birth=BORN), person("Trần Thị Bình", "spouse", sex="female")
    r = await registry.client.post("/v1/households", headers=officer(), json=body(
        village=village, phone=PHONE, members=[head, spouse]))
    assert r.status_code == 201, r.text
    created = r.json()
    hid = created["household_id"]
    r = await registry.client.patch(f"/v1/households/{hid}", headers={**officer(), "If-Match": "1"},
                                    json={"phone": NEW_PHONE, "reason": "new phone number"})
    assert r.status_code == 200, r.text
    spouse_id = created["members"][1]["member_id"]
    new_nid = nid()
    r = await registry.client.patch(f"/v1/households/{hid}/members/{spouse_id}",
                                    headers={**officer(), "If-Match": "2"},
                                    json={"national_id": new_nid, "reason": "ID card reissued"})
    assert r.status_code == 200, r.text
    ids = [head["national_id"], spouse["national_id"], new_nid]
    return {"id": hid, "village": village, "ids": ids, "spouse_id": spouse_id}


def leaks(text: str, household: dict) -> list[str]:
    """Personal values of the household that appear in a response."""
    return [v for v in (*household["ids"], PHONE, NEW_PHONE, BORN) if v in text]


@pytest.mark.parametrize("role", READERS)
async def test_readers_see_masked_ids_birth_years_and_no_phone(registry, household, role):
    r = await registry.client.get(f"/v1/households/{household['id']}", headers=as_role(role))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["access"] == "masked" and "phone" not in got
    head = got["members"][0]
    assert head["national_id"] == "*********" + household["ids"][0][-3:]
    assert head["birth_year"] == 1980 and "date_of_birth" not in head
    assert head["full_name"] == "Nguyễn Văn An"  # names stay: the chair approves by name
    assert leaks(r.text, household) == []

    page = await registry.client.get("/v1/households", params={"village": household["village"]},
                                     headers=as_role(role))
    assert page.status_code == 200
    [item] = page.json()["items"]
    assert item == got
    assert leaks(page.text, household) == []


@pytest.mark.parametrize("role", READERS)
async def test_readers_history_keeps_the_changes_but_not_the_values(registry, household, role):
    r = await registry.client.get(f"/v1/households/{household['id']}/history",
                                  headers=as_role(role))
    assert r.status_code == 200, r.text
    assert leaks(r.text, household) == []
    registered, phone, member = r.json()
    assert [c for c in phone["changes"] if c["field"] == "phone"] == [
        {"field": "phone", "before": None, "after": None, "redacted": True}]
    [changed] = member["changes"]
    assert changed["field"] == f"members.{household['spouse_id']}.national_id"
    assert changed == {"field": changed["field"], "redacted": True,
                       "before": "*********" + household["ids"][1][-3:],
                       "after": "*********" + household["ids"][2][-3:]}
    born = [c for c in registered["changes"] if c["field"].endswith(".date_of_birth")]
    assert {c["after"] for c in born} == {1980} and all(c["redacted"] for c in born)


@pytest.mark.parametrize("role", WRITERS)
async def test_writers_see_every_value(registry, household, role):
    got = (await registry.client.get(f"/v1/households/{household['id']}",
                                     headers=as_role(role))).json()
    assert got["access"] == "full" and got["phone"] == NEW_PHONE
    assert [m["national_id"] for m in got["members"]] == [household["ids"][0], household["ids"][2]]
    assert got["members"][0]["date_of_birth"] == BORN
    history = (await registry.client.get(f"/v1/households/{household['id']}/history",
                                         headers=as_role(role))).json()
    assert {"field": "phone", "before": PHONE, "after": NEW_PHONE, "redacted": False} in \
        history[1]["changes"]
    assert history[2]["changes"][0]["after"] == household["ids"][2]


async def test_an_auditor_reads_import_errors_without_the_quoted_birth_date(registry):
    bad = line(uuid.uuid4().hex, village="Thôn Lỗi", dob="2999-07-15")
    job = await run_import(registry, json.dumps(bad).encode(), NDJSON)
    assert job["rejected"] == 1
    full = await registry.client.get(job["errors_url"], headers=officer())
    assert "2999-07-15" in full.text
    masked = await registry.client.get(job["errors_url"], headers=auth("auditor"))
    assert masked.status_code == 200
    assert "2999-07-15" not in masked.text and "2999-**-**" in masked.text


async def test_the_openapi_documents_both_views(registry):
    doc = (await registry.client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    masked = schemas["HouseholdReadMasked"]["properties"]
    assert "phone" not in masked and "phone" in schemas["HouseholdRead"]["properties"]
    member = schemas["MemberReadMasked"]["properties"]
    assert "birth_year" in member and "date_of_birth" not in member
    one = doc["paths"]["/v1/households/{household_id}"]["get"]["responses"]["200"]
    assert one["content"]["application/json"]["schema"]["discriminator"]["propertyName"] == \
        "access"
