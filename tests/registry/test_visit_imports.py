"""Bulk visits through the import (`POST /v1/imports?kind=visits`): good lines go in and publish,
bad lines are rejected by line with the single request's rules, a re-upload records no visit
twice, and the coverage counts the imported visits."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from services.registry import events
from tests.registry.conftest import (
    HANOI_WARD,
    LAM_BINH,
    admin,
    body,
    officer,
    outbox_rows,
    published,
)
from tests.support.wait import eventually

NDJSON = {"Content-Type": "application/x-ndjson"}


async def _visits(registry) -> int:
    async with registry.runtime.engine.connect() as conn:
        return int(await conn.scalar(sa.text("select count(*) from visit")) or 0)


async def _cadre(registry, commune: str, headers: dict, name: str = "Lò Thị Mai") -> str:
    r = await registry.client.post("/v1/cadres", headers=headers, json={
        "commune_code": commune, "name": name, "organisation": "womens_union"})
    assert r.status_code == 201, r.text
    return str(r.json()["cadre_id"])


async def _household(registry, village: str, *, commune: str = HANOI_WARD, **kw) -> str:
    r = await registry.client.post("/v1/households", headers=officer(commune), json=body(
        commune=commune, province=commune[:2], village=village, **kw))
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def upload_visits(registry, content: bytes, headers: dict, *, who: dict | None = None,
                        **params) -> dict:
    """Upload a visit file, expect 202, wait for the job's end; return the job."""
    who = who or officer()
    r = await registry.client.post("/v1/imports", content=content, headers={**who, **headers},
                                   params={"kind": "visits", **params})
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "visits"

    async def done() -> dict | None:
        j = (await registry.client.get(r.headers["location"], headers=who)).json()
        return j if j["status"] != "running" else None

    return await eventually(done, timeout=60, message="visit import finished")


async def errors_by_line(registry, job: dict, who: dict | None = None) -> dict[int, set[str]]:
    """The error CSV as line → fields."""
    r = await registry.client.get(job["errors_url"], headers=who or officer())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    out: dict[int, set[str]] = {}
    for e in csv.DictReader(io.StringIO(r.text)):
        out.setdefault(int(e["line"]), set()).add(e["field"])
    return out


async def test_visit_import_ndjson_rejects_bad_lines_publishes_and_reupload_is_idempotent(
        registry, servers):
    tag, rnd = uuid.uuid4().hex[:6], f"r-{uuid.uuid4().hex[:6]}"
    village = f"Thôn Thăm {tag}"
    cid = await _cadre(registry, HANOI_WARD, officer())
    remote_cadre = await _cadre(registry, LAM_BINH, admin(), name="Triệu Văn Páo")
    h1 = await _household(registry, village)
    h2 = await _household(registry, village, external_ref=f"{tag}-h2")
    h3, h4 = await _household(registry, village), await _household(registry, village)
    archived = await _household(registry, village)
    r = await registry.client.post(f"/v1/households/{archived}/archive", headers=officer(),
                                   json={"reason": "moved away"})
    assert r.status_code == 200, r.text
    remote = await _household(registry, "Thôn Nà Vài", commune=LAM_BINH)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()

    def v(ref: str, **kw) -> str:
        return json.dumps({"external_ref": f"{tag}-{ref}", "cadre_id": cid,
                           "visited_on": "2025-03-01", "outcome": "not_home",
                           "review_round": rnd, **kw})

    rows = [
        v("1", household_id=h1, outcome="surveyed", note="cả nhà có mặt"),   # 1 good
        v("2", household_external_ref=f"{tag}-h2"),                         # 2 good
        v("3", household_external_ref=f"{tag}-h2", visited_on="2025-03-08"),  # 3 good
        v("4", household_id=archived),                                       # 4 archived
        v("5", household_id=h3, visited_on=tomorrow),                        # 5 future
        v("6", household_id=h3, outcome="follow_up"),                        # 6 no next due
        v("7", household_id=h3, cadre_id=remote_cadre),                      # 7 cadre elsewhere
        v("8", household_id=remote),                                         # 8 outside scope
        v("9", household_external_ref=f"{tag}-nobody"),                      # 9 unknown ref
        v("10", household_id=h3, household_external_ref=f"{tag}-h2"),       # 10 both
        json.dumps({"household_id": h3, "cadre_id": cid, "visited_on": "2025-03-01",
                    "outcome": "not_home"}),                                 # 11 no ref
        '{"external_ref": "broken",',                                        # 12 not JSON
        "",                                                                  # 13 blank
        v("14", household_id=h3, outcome="follow_up", next_visit_due="2025-04-01"),  # 14 good
        v("15", household_id=h4, outcome="surveyed"),                        # 15 good
        v("1", household_id=h1, outcome="surveyed", note="cả nhà có mặt"),   # 16 = line 1
        v("2", household_external_ref=f"{tag}-h2", outcome="refused"),       # 17 ref of 2 changed
    ]
    content = ("\n".join(rows) + "\n").encode()
    visits_before = await _visits(registry)
    job = await upload_visits(registry, content, NDJSON, filename="visits.ndjson")
    assert job["status"] == "done", job
    assert (job["total"], job["accepted"], job["skipped"], job["rejected"]) == (16, 5, 1, 10)
    assert await errors_by_line(registry, job) == {
        4: {"household_id"}, 5: {"visited_on"}, 6: {"next_visit_due"}, 7: {"cadre_id"},
        8: {"household_id"}, 9: {"household_external_ref"}, 10: {"household_id"},
        11: {"external_ref"}, 12: {"line"}, 17: {"external_ref"}}
    assert await _visits(registry) == visits_before + 5
    errors = (await registry.client.get(job["errors_url"], headers=officer())).text
    assert "archived" in errors and "in the future" in errors
    assert f"no household {remote} in your scope" in errors

    listed = (await registry.client.get(f"/v1/households/{h2}/visits",
                                        headers=officer())).json()
    assert sorted(x["visited_on"] for x in listed) == ["2025-03-01", "2025-03-08"]
    evts = await published(servers.bootstrap_servers, h1, 2)
    assert [e.type for e in evts] == [events.HOUSEHOLD_REGISTERED, events.HOUSEHOLD_VISITED]
    visited = events.HouseholdVisitedV1.model_validate(evts[1].data)
    assert visited.import_id == job["import_id"] and visited.visit.outcome == "surveyed"
    assert visited.visit.cadre_id == cid and visited.visit.note == "cả nhà có mặt"
    assert visited.household.location.village == village and visited.version == 1
    assert len(await published(servers.bootstrap_servers, h2, 3)) >= 3

    before = (await _visits(registry), await outbox_rows(registry))
    again = await upload_visits(registry, content, NDJSON)
    assert (again["total"], again["accepted"], again["skipped"], again["rejected"]) == (
        16, 0, 6, 10)
    assert (await _visits(registry), await outbox_rows(registry)) == before

    cov = (await registry.client.get("/v1/coverage", headers=officer(), params={
        "commune_code": HANOI_WARD, "review_round": rnd, "limit": 500})).json()
    assert {v["village"]: v for v in cov["villages"]}[village] == {
        "village": village, "households": 4, "visited": 4, "surveyed": 2, "not_reached": 0,
        "overdue_follow_ups": 1}
    mine = {c["cadre_id"]: c for c in cov["cadres"]}[cid]
    assert (mine["visits"], mine["households"], mine["surveyed"], mine["follow_ups"]) == (
        5, 4, 2, 1)
    assert not {h1, h2, h3, h4} & {u["household_id"] for u in cov["unvisited"]}


async def test_visit_import_csv_by_line_with_a_cadre_of_another_commune(registry):
    tag, rnd = uuid.uuid4().hex[:6], f"r-{uuid.uuid4().hex[:6]}"
    village = f"Thôn CSV {tag}"
    cid = await _cadre(registry, HANOI_WARD, officer())
    elsewhere = await _cadre(registry, LAM_BINH, admin())
    h1 = await _household(registry, village, external_ref=f"{tag}-h1")
    h2 = await _household(registry, village)
    text = (
        "external_ref,household_id,household_external_ref,cadre_id,visited_on,outcome,note,"
        "next_visit_due,review_round\n"
        f"{tag}-a,,{tag}-h1,{cid},2025-03-02,not_home,,,{rnd}\n"
        f"{tag}-b,{h2},,{elsewhere},2025-03-02,surveyed,,,{rnd}\n"
        f"{tag}-c,{h2},,{cid},2025-03-02,knocked,,,{rnd}\n"
        f'{tag}-d,{h2},,{cid},2025-03-03,follow_up,"gọi lại, sau mùa gặt",2025-04-01,{rnd}\n'
        f"{tag}-e,{h2},,{cid},03/04/2025,surveyed,,,{rnd}\n")
    job = await upload_visits(registry, text.encode(), {"Content-Type": "text/csv"}, who=admin())
    assert (job["format"], job["total"], job["accepted"], job["rejected"]) == ("csv", 5, 2, 3)
    assert await errors_by_line(registry, job, admin()) == {
        3: {"cadre_id"}, 4: {"outcome"}, 6: {"visited_on"}}
    errors = (await registry.client.get(job["errors_url"], headers=admin())).text
    assert f"not a cadre of commune {HANOI_WARD}" in errors
    listed = (await registry.client.get(f"/v1/households/{h2}/visits", headers=officer())).json()
    assert [(x["outcome"], x["note"], x["next_visit_due"]) for x in listed] == [
        ("follow_up", "gọi lại, sau mùa gặt", "2025-04-01")]
    assert [x["outcome"] for x in (await registry.client.get(
        f"/v1/households/{h1}/visits", headers=officer())).json()] == ["not_home"]
    again = await upload_visits(registry, text.encode(), {}, who=admin(), format="csv")
    assert (again["accepted"], again["skipped"], again["rejected"]) == (0, 2, 3)

    missing = await upload_visits(registry, b"external_ref,cadre_id,visited_on\nx,y,2025-01-01\n",
                                  {"Content-Type": "text/csv"})
    assert missing["rejected"] == 1
    assert await errors_by_line(registry, missing) == {1: {"header"}}
