"""Bad input → 422 problem+json naming each bad field; nothing stored, nothing published."""

from __future__ import annotations

import copy
import uuid

import pytest

from tests.registry.conftest import (
    body,
    count_households,
    officer,
    outbox_rows,
    person,
    published,
    survey,
)
from tests.support.kafka import collect

MARKER = f"Thôn Sai {uuid.uuid4().hex[:6]}"


def bad(change) -> dict:
    """A valid body (village = MARKER) broken by `change`."""
    b = body(village=MARKER)
    change(b)
    return b


def _set(path: str, value):
    def change(b: dict) -> None:
        target = b
        *parents, last = path.split(".")
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(last) if last.isdigit() else last] = value
    return change


CASES = {
    "id too short": (bad(_set("members.0.national_id", "12345678901")),
                     {"members.0.national_id"}),
    "id with letters": (bad(_set("members.1.national_id", "00109700012A")),
                        {"members.1.national_id"}),
    "future birth date": (bad(_set("members.1.date_of_birth", "2999-01-01")),
                          {"members.1.date_of_birth"}),
    "no head": (bad(_set("members.0.relation", "child")), {"members"}),
    "two heads": (bad(_set("members.1.relation", "head")), {"members"}),
    "unknown commune": (bad(_set("location.commune_code", "99999")), {"location.commune_code"}),
    "commune of another province": (bad(_set("location.province_code", "08")),
                                    {"location.province_code"}),
    "oversized name": (bad(_set("members.0.full_name", "A" * 5000)), {"members.0.full_name"}),
    "too many members": (bad(lambda b: b.update(members=[person()] + [
        person(f"Con {i}", "child") for i in range(60)])), {"members"}),
    "several at once": (bad(lambda b: (b["members"][0].update(national_id="1"),
                                       b["members"][1].update(sex="robot"),
                                       b.update(area_type="suburban"))),
                        {"members.0.national_id", "members.1.sex", "area_type"}),
    "unknown field": (bad(_set("colour", "blue")), {"colour"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_registration_is_422_naming_each_field_and_nothing_is_written(registry, case):
    sent, fields = CASES[case]
    before = (await count_households(registry), await outbox_rows(registry))
    r = await registry.client.post("/v1/households", json=sent, headers=officer())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in r.json()["errors"]} == fields
    assert (await count_households(registry), await outbox_rows(registry)) == before


async def test_an_oversized_body_is_refused_before_anything_is_written(registry):
    huge = body(village=MARKER, address="x" * 1_100_000)
    before = (await count_households(registry), await outbox_rows(registry))
    r = await registry.client.post("/v1/households", json=huge, headers=officer())
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await count_households(registry), await outbox_rows(registry)) == before


async def test_bad_surveys_are_422_naming_each_field(registry):
    hid = (await registry.client.post("/v1/households", json=body(),
                                      headers=officer())).json()["household_id"]
    url = f"/v1/households/{hid}/surveys"
    before = await outbox_rows(registry)
    cases = [
        (survey(income_per_capita_vnd=-1), {"income_per_capita_vnd"}),
        (survey(deprivations={"latrine": True, "owns_a_yacht": True}),
         {"deprivations.owns_a_yacht.[key]"}),
        (survey(survey_date="2999-12-31"), {"survey_date"}),
        (survey(deprivations={"latrine": "maybe"}), {"deprivations.latrine"}),
    ]
    for sent, fields in cases:
        r = await registry.client.post(url, json=sent, headers=officer())
        assert r.status_code == 422, (sent, r.text)
        assert {e["field"] for e in r.json()["errors"]} == fields, r.json()
    assert await outbox_rows(registry) == before
    listed = await registry.client.get(url, headers=officer())
    assert listed.json() == []


async def test_nothing_about_the_bad_bodies_reached_the_broker(registry, servers):
    for sent, _ in CASES.values():
        await registry.client.post("/v1/households", json=copy.deepcopy(sent), headers=officer())
    sentinel = (await registry.client.post("/v1/households", json=body(),
                                           headers=officer())).json()["household_id"]
    await published(servers.bootstrap_servers, sentinel, 1)  # the relay got this far
    records = await collect(servers.bootstrap_servers, "registry.households",
                            until=lambda rs: any(r.key == sentinel.encode() for r in rs))
    assert not [r for r in records if MARKER.encode() in r.value]
