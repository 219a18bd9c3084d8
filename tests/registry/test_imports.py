"""Bulk import: NDJSON and CSV with bad lines, progress, error list, idempotent re-upload."""

from __future__ import annotations

import csv
import io
import json
import uuid

from services.registry import events
from tests.registry.conftest import (
    count_households,
    nid,
    officer,
    outbox_rows,
    published,
    survey,
)
from tests.support.apps import auth
from tests.support.wait import eventually

NDJSON = {"Content-Type": "application/x-ndjson"}


def line(ref: str, *, village: str, **kw) -> dict:
    """One NDJSON household with an inline survey."""
    return {"external_ref": ref, "area_type": "rural",
            "location": {"province_code": "01", "commune_code": "01001", "village": village},
            "members": [{"full_name": kw.pop("name", "Lù Văn Pao"), "national_id": kw.pop("nid", None) or nid(),
                         "date_of_birth": kw.pop("dob", "1970-01-01"), "sex": "male",
                         "relation": "head"}],
            "survey": survey(), **kw}


async def run_import(registry, content: bytes, headers: dict, **params) -> dict:
    """Upload, expect 202, wait until the job is done; return the job."""
    r = await registry.client.post("/v1/imports", content=content, params=params,
                                   headers={**officer(), **headers})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("running", "done")
    assert r.headers["location"] == f"/v1/imports/{job['import_id']}"

    async def done() -> dict | None:
        j = (await registry.client.get(f"/v1/imports/{job['import_id']}",
                                       headers=officer())).json()
        return j if j["status"] != "running" else None

    return await eventually(done, timeout=60, message="import finished")


async def error_rows(registry, job: dict) -> list[dict]:
    """The downloadable error list, parsed."""
    r = await registry.client.get(job["errors_url"], headers=officer())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_ndjson_import_with_bad_lines_then_reupload_creates_no_duplicates(registry, servers):
    tag = uuid.uuid4().hex[:6]
    village = f"Thôn Nhập {tag}"
    shared_id = nid()
    good = [line(f"{tag}-{i}", village=village) for i in range(12)]
    rows = [
        json.dumps(line(f"{tag}-first", village=village, nid=shared_id)),   # 1 good
        '{"external_ref": "broken", ',                                      # 2 bad JSON
        json.dumps(line(f"{tag}-short-id", village=village, nid="12345")),   # 3 bad id
        json.dumps(line(f"{tag}-nowhere", village=village) | {
            "location": {"province_code": "01", "commune_code": "99999", "village": "X"}}),  # 4
        json.dumps(line(f"{tag}-dup-id", village=village, nid=shared_id)),   # 5 id of line 1
        "[1, 2, 3]",                                                         # 6 not an object
        "",                                                                  # 7 blank
        json.dumps(line(f"{tag}-future", village=village, dob="2999-01-01")),  # 8
        json.dumps({k: v for k, v in line("", village=village).items()
                    if k != "external_ref"}),                                # 9 no ref
        json.dumps(line(f"{tag}-neg", village=village) | {
            "survey": survey(income_per_capita_vnd=-5, deprivations={"yacht": True})}),  # 10
        *[json.dumps(g) for g in good],                                      # 11..22 good
    ]
    content = ("\n".join(rows) + "\n").encode()
    job = await run_import(registry, content, NDJSON, filename="households.ndjson")
    assert job["status"] == "done", job
    assert (job["total"], job["accepted"], job["skipped"], job["rejected"]) == (21, 13, 0, 8)

    errors = await error_rows(registry, job)
    by_line = {}
    for e in errors:
        by_line.setdefault(int(e["line"]), set()).add(e["field"])
    assert by_line[2] == {"line"} and by_line[6] == {"line"}
    assert by_line[3] == {"members.0.national_id"}
    assert by_line[4] == {"location.commune_code"}
    assert by_line[5] == {"members.0.national_id"}
    assert by_line[8] == {"members.0.date_of_birth"}
    assert by_line[9] == {"external_ref"}
    assert by_line[10] == {"survey.income_per_capita_vnd", "survey.deprivations.yacht.[key]"}
    assert set(by_line) == {2, 3, 4, 5, 6, 8, 9, 10}

    page = (await registry.client.get("/v1/households", headers=officer(),
                                      params={"village": village, "limit": 100})).json()
    imported = {h["external_ref"]: h for h in page["items"]}
    assert set(imported) == {f"{tag}-first", *(g["external_ref"] for g in good)}
    first = imported[f"{tag}-first"]
    assert first["version"] == 2 and first["current_survey"]["income_per_capita_vnd"] == 1_200_000
    evts = await published(servers.bootstrap_servers, first["household_id"], 2)
    assert [e.type for e in evts] == [events.HOUSEHOLD_REGISTERED, events.HOUSEHOLD_SURVEYED]
    surveyed = events.HouseholdSurveyedV1.model_validate(evts[1].data)
    assert surveyed.import_id == job["import_id"] and surveyed.household.head_name == "Lù Văn Pao"
    assert surveyed.survey.deprivations["latrine"] is True

    before = (await count_households(registry), await outbox_rows(registry))
    again = await run_import(registry, content, NDJSON)
    assert (again["total"], again["accepted"], again["skipped"], again["rejected"]) == (21, 0, 13, 8)
    assert (await count_households(registry), await outbox_rows(registry)) == before

    changed = [line(f"{tag}-first", village=village, nid=shared_id) | {
        "survey": survey(survey_date="2025-12-01", review_round="2025-late")},
               good[0] | {"address": "changed"}, good[1]]
    third = await run_import(registry, "\n".join(json.dumps(c) for c in changed).encode(), NDJSON)
    assert (third["accepted"], third["skipped"], third["rejected"]) == (1, 1, 1)
    [err] = await error_rows(registry, third)
    assert err["line"] == "2" and err["field"] == "external_ref"
    refreshed = (await registry.client.get(f"/v1/households/{first['household_id']}",
                                           headers=officer())).json()
    assert refreshed["current_survey"]["survey_date"] == "2025-12-01"


CSV_TEXT = """external_ref,area_type,province_code,commune_code,village,address,phone,full_name,national_id,date_of_birth,sex,relation,ethnicity,disability,survey_date,review_round,income_per_capita_vnd,surveyor,notes,dep_health_insurance,dep_water_source,dep_latrine,fact_housing_area_m2
{t}-a,rural,01,01001,{v},,,Giàng A Lử,{n1},1975-05-05,male,head,Hmông,0,2025-09-01,2025,1100000,Lò Văn Khánh,,1,0,1,18
{t}-a,,,,,,,Giàng Thị Dợ,{n2},1978-08-08,female,spouse,Hmông,,,,,,,,,,
{t}-a,,,,,,,Giàng A Chư,{n3},2010-01-01,male,child,Hmông,yes,,,,,,,,,
{t}-b,rural,01,01001,{v},,,Sùng A Tủa,12345,1980-01-01,male,head,,,2025-09-01,2025,900000,,,1,1,1,
{t}-c,rural,01,01001,{v},,,Thào A Dê,{n4},1981-01-01,male,head,,,2025-09-01,2025,900000,,,maybe,1,1,
{t}-d,rural,01,01001,{v},,,Mùa A Sình,{n5},1982-01-01,male,head,,,2025-09-01,2025,900000,,,0,0,0,30
{t}-e,urban,01,01001,{v},,,Vừ A Dính,{n6},1983-01-01,male,spouse,,,,,,,,,,,
"""


async def test_csv_import_groups_member_rows_and_rejects_bad_rows_by_line(registry):
    tag, village = uuid.uuid4().hex[:6], f"Bản CSV {uuid.uuid4().hex[:4]}"
    text = CSV_TEXT.format(t=tag, v=village, n1=nid(), n2=nid(), n3=nid(), n4=nid(), n5=nid(),
                           n6=nid())
    job = await run_import(registry, text.encode(), {"Content-Type": "text/csv"})
    assert (job["total"], job["accepted"], job["rejected"]) == (5, 2, 3), job
    errors = {(int(e["line"]), e["field"]) for e in await error_rows(registry, job)}
    assert errors == {(5, "members.0.national_id"), (6, "survey.deprivations.health_insurance"),
                      (8, "members")}
    page = (await registry.client.get("/v1/households", headers=officer(),
                                      params={"village": village})).json()["items"]
    a = next(h for h in page if h["external_ref"] == f"{tag}-a")
    assert [m["full_name"] for m in a["members"]] == ["Giàng A Lử", "Giàng Thị Dợ", "Giàng A Chư"]
    assert a["members"][2]["disability"] is True
    assert a["current_survey"]["deprivations"] == {"health_insurance": True, "water_source": False,
                                                   "latrine": True}
    assert a["current_survey"]["facts"] == {"housing_area_m2": 18}
    again = await run_import(registry, text.encode(), {}, format="csv")
    assert (again["accepted"], again["skipped"], again["rejected"]) == (0, 2, 3)


async def test_import_jobs_are_private_and_formats_checked(registry):
    r = await registry.client.post("/v1/imports", content=b"x", headers={
        **officer(), "Content-Type": "application/pdf"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "format"
    r = await registry.client.post("/v1/imports", content=b"", headers={**officer(), **NDJSON})
    assert r.status_code == 422
    job = await run_import(registry, json.dumps(line(uuid.uuid4().hex, village="Thôn Riêng")).encode(),
                           NDJSON)
    other = await registry.client.get(f"/v1/imports/{job['import_id']}",
                                      headers=auth("commune_officer", "08001", sub="someone-else"))
    assert other.status_code == 404
    assert (await registry.client.get(f"/v1/imports/{job['import_id']}",
                                      headers=auth("auditor"))).status_code == 200
    outside = await run_import(registry, json.dumps(line(uuid.uuid4().hex, village="Thôn Xa") | {
        "location": {"province_code": "08", "commune_code": "08001", "village": "Thôn Xa"}}
    ).encode(), NDJSON)
    assert (outside["accepted"], outside["rejected"]) == (0, 1)


async def test_unstorable_lines_are_rejected_and_the_error_list_is_safe_in_a_spreadsheet(registry):
    tag = uuid.uuid4().hex[:6]
    village = f"Thôn Sạch {tag}"
    formula = '=HYPERLINK("http://evil.invalid","x")'
    rows = [line(f"{tag}-good", village=village),
            line(f"{tag}-nul", village=village, name="Lù\x00Văn Pao"),
            line(f"{tag}-big", village=village) | {
                "survey": survey(facts={"housing_area_m2": 20, "rooms": 2**64})},
            line(formula, village=village)]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    job = await run_import(registry, content, NDJSON)
    assert (job["status"], job["accepted"], job["rejected"]) == ("done", 1, 3), job
    errors = await error_rows(registry, job)
    assert {(int(e["line"]), e["field"]) for e in errors} == {
        (2, "members.0.full_name"), (3, "survey.facts.rooms"), (4, "external_ref")}
    assert next(e for e in errors if e["line"] == "4")["external_ref"] == "'" + formula
