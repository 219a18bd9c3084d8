"""Cadres, their assignments and the door-to-door visit log: the event on registry.households,
a commune's coverage, and each bad input refused with problem+json and nothing stored."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from services.registry import events
from tests.registry.conftest import (
    HANOI_WARD,
    LAM_BINH,
    TUYEN_QUANG,
    admin,
    body,
    officer,
    outbox_rows,
    published,
    survey,
)
from tests.support.apps import auth

PROBLEM = "application/problem+json"
BAC_YEN = "14002"  # a commune no other test writes in: the coverage test owns it


async def _count(registry, table: str) -> int:
    async with registry.runtime.engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"select count(*) from {table}")) or 0)


async def _cadre(registry, *, commune: str = HANOI_WARD, headers=None, **kw) -> dict:
    r = await registry.client.post("/v1/cadres", headers=headers or officer(commune), json={
        "commune_code": commune, "name": kw.pop("name", "Lò Thị Mai"),
        "organisation": kw.pop("organisation", "womens_union"), **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def _household(registry, village: str, commune: str = HANOI_WARD) -> str:
    province = commune[:2]
    r = await registry.client.post("/v1/households", headers=officer(commune),
                                   json=body(commune=commune, province=province, village=village))
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def _visit(registry, hid: str, cadre_id: str, outcome: str, *, on: str = "2025-03-01",
                 commune: str = HANOI_WARD, **kw) -> dict:
    r = await registry.client.post(f"/v1/households/{hid}/visits", headers=officer(commune),
                                   json={
        "cadre_id": cadre_id, "visited_on": on, "outcome": outcome, **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def test_cadre_assignment_and_visit_publish_and_keep_history(registry, servers):
    village = f"Thôn {uuid.uuid4().hex[:8]}"
    cadre = await _cadre(registry, phone="0912345678", young_cadre=True)
    assert cadre["access"] == "full" and cadre["phone"] == "0912345678"
    assert cadre["province_code"] == "01" and cadre["young_cadre"] is True
    chair = auth("commune_chair", HANOI_WARD)
    seen = (await registry.client.get(f"/v1/cadres/{cadre['cadre_id']}", headers=chair)).json()
    assert seen["access"] == "masked" and "phone" not in seen and seen["name"] == "Lò Thị Mai"
    listed = (await registry.client.get("/v1/cadres", params={"commune_code": HANOI_WARD},
                                        headers=chair)).json()
    assert cadre["cadre_id"] in {c["cadre_id"] for c in listed}
    assert all("phone" not in c for c in listed)

    first = await registry.client.post("/v1/assignments", headers=officer(), json={
        "cadre_id": cadre["cadre_id"], "commune_code": HANOI_WARD, "villages": [village],
        "valid_from": "2025-01-01"})
    assert first.status_code == 201, first.text
    before = await _count(registry, "assignment")
    overlap = await registry.client.post("/v1/assignments", headers=officer(), json={
        "cadre_id": cadre["cadre_id"], "commune_code": HANOI_WARD, "villages": [village],
        "valid_from": "2025-06-01"})
    assert overlap.status_code == 409 and overlap.headers["content-type"] == PROBLEM
    assert first.json()["assignment_id"] in overlap.json()["detail"]
    assert await _count(registry, "assignment") == before
    ended = await registry.client.post(
        f"/v1/assignments/{first.json()['assignment_id']}/end", headers=officer(),
        json={"valid_to": "2025-05-31", "reason": "moved to another village"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["valid_to"] == "2025-05-31" and ended.json()["ended_by"]
    twice = await registry.client.post(
        f"/v1/assignments/{first.json()['assignment_id']}/end", headers=officer(),
        json={"valid_to": "2025-07-31", "reason": "extended by mistake"})
    assert twice.status_code == 409 and "already ends on 2025-05-31" in twice.json()["detail"]
    again = await registry.client.post("/v1/assignments", headers=officer(), json={
        "cadre_id": cadre["cadre_id"], "commune_code": HANOI_WARD, "villages": [village],
        "valid_from": "2025-06-01"})
    assert again.status_code == 201, again.text
    history = (await registry.client.get("/v1/assignments", headers=chair,
                                         params={"cadre_id": cadre["cadre_id"]})).json()
    assert [(a["valid_from"], a["valid_to"]) for a in history] == [
        ("2025-06-01", None), ("2025-01-01", "2025-05-31")]

    hid = await _household(registry, village)
    visit = await _visit(registry, hid, cadre["cadre_id"], "surveyed", on="2025-06-10",
                         note="cả nhà có mặt", review_round="2025")
    assert visit["cadre_name"] == "Lò Thị Mai" and visit["village"] == village
    got = await registry.client.get(f"/v1/households/{hid}", headers=officer())
    assert got.headers["etag"] == '"1"'  # a visit does not change the household
    listed_visits = (await registry.client.get(f"/v1/households/{hid}/visits",
                                               headers=chair)).json()
    assert [v["visit_id"] for v in listed_visits] == [visit["visit_id"]]

    evts = await published(servers.bootstrap_servers, hid, 2)
    assert evts[1].type == events.HOUSEHOLD_VISITED and evts[1].id == visit["event_id"]
    payload = events.HouseholdVisitedV1.model_validate(evts[1].data)
    assert payload.visit.outcome == "surveyed" and payload.visit.cadre_id == cadre["cadre_id"]
    assert payload.visit.visited_on == date(2025, 6, 10) and payload.version == 1
    assert payload.household.location.village == village
    assert "0912345678" not in str(evts[1].data)  # the cadre's phone never travels

    taken = await registry.client.post(f"/v1/households/{hid}/surveys", headers=officer(),
                                       json=survey(visit_id=visit["visit_id"]))
    assert taken.status_code == 201, taken.text
    assert taken.json()["visit_id"] == visit["visit_id"]
    surveyed = (await published(servers.bootstrap_servers, hid, 3))[2]
    assert surveyed.type == events.HOUSEHOLD_SURVEYED
    assert events.HouseholdSurveyedV1.model_validate(surveyed.data).survey.visit_id == \
        visit["visit_id"]
    other = await _household(registry, village)
    wrong = await registry.client.post(f"/v1/households/{other}/surveys", headers=officer(),
                                       json=survey(visit_id=visit["visit_id"]))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "visit_id"
    assert (await registry.client.get(f"/v1/households/{other}/surveys",
                                      headers=officer())).json() == []


async def test_bad_visits_are_refused_naming_why_and_nothing_is_stored(registry):
    village = f"Thôn {uuid.uuid4().hex[:8]}"
    cadre = await _cadre(registry)
    elsewhere = await _cadre(registry, commune=LAM_BINH, headers=admin(), name="Triệu Văn Páo")
    hid = await _household(registry, village)
    archived = await _household(registry, village)
    r = await registry.client.post(f"/v1/households/{archived}/archive", headers=officer(),
                                   json={"reason": "moved"})
    assert r.status_code == 200, r.text
    visits, events_before = await _count(registry, "visit"), await outbox_rows(registry)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    cases = [
        (hid, {"cadre_id": cadre["cadre_id"], "visited_on": tomorrow, "outcome": "surveyed"},
         422, "visited_on"),
        (hid, {"cadre_id": cadre["cadre_id"], "visited_on": "2025-03-01",
               "outcome": "follow_up"}, 422, "next_visit_due"),
        (hid, {"cadre_id": elsewhere["cadre_id"], "visited_on": "2025-03-01",
               "outcome": "not_home"}, 422, "cadre_id"),
        (hid, {"cadre_id": str(uuid.uuid4()), "visited_on": "2025-03-01",
               "outcome": "not_home"}, 422, "cadre_id"),
        (hid, {"cadre_id": cadre["cadre_id"], "visited_on": "2025-03-01",
               "outcome": "knocked"}, 422, "outcome"),
        (archived, {"cadre_id": cadre["cadre_id"], "visited_on": "2025-03-01",
                    "outcome": "not_home"}, 409, "household_id"),
    ]
    for household, payload, status, field in cases:
        r = await registry.client.post(f"/v1/households/{household}/visits", headers=officer(),
                                       json=payload)
        assert r.status_code == status, (payload, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    archived_detail = (await registry.client.post(
        f"/v1/households/{archived}/visits", headers=officer(),
        json=cases[-1][1])).json()["detail"]
    assert "archived" in archived_detail
    assert await _count(registry, "visit") == visits
    assert await outbox_rows(registry) == events_before


async def test_an_assignment_outside_the_officers_scope_is_refused(registry):
    cadre = await _cadre(registry)
    remote = await _cadre(registry, commune=LAM_BINH, headers=admin())
    before = await _count(registry, "assignment")
    outside = await registry.client.post("/v1/assignments", headers=officer(), json={
        "cadre_id": remote["cadre_id"], "commune_code": LAM_BINH, "villages": ["Thôn Nà Vài"],
        "valid_from": "2025-01-01"})
    assert outside.status_code == 403 and outside.headers["content-type"] == PROBLEM
    assert "outside your scope" in outside.json()["detail"]
    foreign_cadre = await registry.client.post("/v1/assignments", headers=officer(), json={
        "cadre_id": remote["cadre_id"], "commune_code": HANOI_WARD, "villages": ["Thôn 1"],
        "valid_from": "2025-01-01"})
    assert foreign_cadre.status_code == 422
    assert foreign_cadre.json()["errors"][0]["field"] == "cadre_id"
    backwards = await registry.client.post("/v1/assignments", headers=officer(), json={
        "cadre_id": cadre["cadre_id"], "commune_code": HANOI_WARD, "villages": ["Thôn 1"],
        "valid_from": "2025-05-01", "valid_to": "2025-04-01"})
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "valid_to"
    assert await _count(registry, "assignment") == before
    hidden = await registry.client.get(f"/v1/cadres/{remote['cadre_id']}", headers=officer())
    assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM
    create = await registry.client.post("/v1/cadres", headers=officer(), json={
        "commune_code": LAM_BINH, "name": "X", "organisation": "youth_union"})
    assert create.status_code == 403
    listed = (await registry.client.get("/v1/assignments", headers=auth(
        "commune_officer", LAM_BINH))).json()
    assert all(a["commune_code"] == LAM_BINH for a in listed)
    assert remote["province_code"] == TUYEN_QUANG


async def test_coverage_counts_a_small_communes_villages_and_cadres(registry):
    rnd = f"r-{uuid.uuid4().hex[:6]}"
    a, b = f"Thôn A {uuid.uuid4().hex[:6]}", f"Thôn B {uuid.uuid4().hex[:6]}"
    cadre = await _cadre(registry, name="Cán bộ A", commune=BAC_YEN)
    idle = await _cadre(registry, name="Cán bộ B", organisation="youth_union", commune=BAC_YEN)
    h1, h2, h3, h4, h5 = [await _household(registry, a, BAC_YEN) for _ in range(5)]
    hb = await _household(registry, b, BAC_YEN)
    cid = cadre["cadre_id"]
    await _visit(registry, h1, cid, "surveyed", review_round=rnd, commune=BAC_YEN)
    for day in ("2025-03-01", "2025-03-05", "2025-03-09"):
        await _visit(registry, h2, cid, "not_home", on=day, review_round=rnd, commune=BAC_YEN)
    await _visit(registry, h3, cid, "refused", on="2025-01-02", review_round=rnd, commune=BAC_YEN)
    await _visit(registry, h3, cid, "follow_up", on="2025-01-10", next_visit_due="2025-02-01",
                 review_round=rnd, commune=BAC_YEN)
    await _visit(registry, h5, cid, "follow_up", on="2025-01-10", next_visit_due="2025-02-01",
                 review_round=rnd, commune=BAC_YEN)
    await _visit(registry, h5, cid, "surveyed", on="2025-02-01", review_round=rnd, commune=BAC_YEN)
    await _visit(registry, h4, cid, "surveyed", review_round="another round",
                 commune=BAC_YEN)
    r = await registry.client.post(f"/v1/households/{hb}/surveys", headers=officer(BAC_YEN),
                                   json=survey(review_round=rnd))
    assert r.status_code == 201, r.text

    chair = auth("commune_chair", BAC_YEN)
    got = await registry.client.get("/v1/coverage", headers=chair,
                                    params={"commune_code": BAC_YEN, "review_round": rnd,
                                            "limit": 500})
    assert got.status_code == 200, got.text
    cov = got.json()
    assert cov["not_reached_attempts"] == 3
    villages = {v["village"]: v for v in cov["villages"]}
    assert villages[a] == {"village": a, "households": 5, "visited": 4, "surveyed": 2,
                           "not_reached": 1, "overdue_follow_ups": 1}
    assert villages[b] == {"village": b, "households": 1, "visited": 0, "surveyed": 1,
                           "not_reached": 0, "overdue_follow_ups": 0}
    cadres = {c["cadre_id"]: c for c in cov["cadres"]}
    assert cadres[cid] == {
        "cadre_id": cid, "name": "Cán bộ A", "organisation": "womens_union", "visits": 8,
        "households": 4, "surveyed": 2, "follow_ups": 2}
    assert cadres[idle["cadre_id"]]["visits"] == 0
    unvisited = {u["household_id"] for u in cov["unvisited"]}
    assert {h4, hb} <= unvisited and not {h1, h2, h3, h5} & unvisited

    paged, cursor, pages = [], None, 0
    while True:
        params = {"commune_code": BAC_YEN, "review_round": rnd, "limit": 1}
        page = (await registry.client.get("/v1/coverage", headers=officer(BAC_YEN),
                                          params={**params, **({"cursor": cursor} if cursor
                                                               else {})})).json()
        paged += [u["household_id"] for u in page["unvisited"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [u["household_id"] for u in cov["unvisited"]] and pages > 1

    hidden = await registry.client.get("/v1/coverage", headers=officer(LAM_BINH),
                                       params={"commune_code": BAC_YEN, "review_round": rnd})
    assert hidden.status_code == 404 and hidden.headers["content-type"] == PROBLEM
