"""The golden path, end to end: four service processes and the reference bank partner on a fresh
embedded broker and PostgreSQL, driven only through HTTP and Kafka as clients would (issue 7)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from services.disbursement import events as disbursement_events
from tests.support.apps import auth
from tests.support.kafka import collect, header
from tests.support.system import System, running_system
from tests.support.wait import eventually

COMMUNE, PROVINCE, VILLAGE = "08001", "08", "Thôn Đồng Mán"
INDICATORS = ("employment", "dependants", "nutrition", "health_insurance", "adult_education",
              "school_attendance", "housing_quality", "housing_area", "water_source", "latrine",
              "telecom", "information_access")
GOLDEN_DEPRIVED = {"health_insurance", "housing_area", "latrine"}


@pytest.fixture(scope="module")
def system(servers):
    """The whole platform as separate processes, with the reference bank partner."""
    with running_system(bank_partner=True) as s:
        yield s


class Form(HTMLParser):
    """The complaint form of the public page: its action and its fields' options."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._in_form, self.action = True, a.get("action")
        elif self._in_form and tag in ("input", "textarea", "select") and a.get("name"):
            self.fields.setdefault(a["name"] or "", [])
            if tag == "select":
                self._select = a["name"]
            elif tag == "input" and a.get("type") == "radio" and a.get("value"):
                self.fields[a["name"] or ""].append(a["value"] or "")
        elif tag == "option" and self._select and a.get("value") is not None:
            self.fields[self._select].append(a["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "form":
            self._in_form = False


def survey(income: int, deprived: set[str], survey_date: str) -> dict[str, Any]:
    """A survey stating every 2022 indicator."""
    return {"survey_date": survey_date, "review_round": "2026-periodic",
            "income_per_capita_vnd": income,
            "deprivations": {code: code in deprived for code in INDICATORS},
            "surveyor": "Cán bộ LĐTBXH xã"}


def household_body(n: int, head: str) -> dict[str, Any]:
    """A rural household of the demo commune with a head and a spouse."""
    return {"area_type": "rural",
            "location": {"province_code": PROVINCE, "commune_code": COMMUNE, "village": VILLAGE},
            "address": f"Số {n}, {VILLAGE}", "phone": f"09120000{n:02d}",
            "members": [
                {"full_name": head, "national_id": f"0080780{n:05d}", "date_of_birth": "1978-04-12",
                 "sex": "male", "relation": "head", "ethnicity": "Tày"},
                {"full_name": f"Hoàng Thị Mai {n}", "national_id": f"0081820{n:05d}",
                 "date_of_birth": "1982-09-30", "sex": "female", "relation": "spouse",
                 "ethnicity": "Tày"}]}


class Officers:
    """The commune's officers and chair, and an auditor, talking to the four services."""

    def __init__(self, system: System, client: httpx.AsyncClient) -> None:
        self.system, self.client = system, client
        self.officer = auth("commune_officer", COMMUNE, sub="officer-lan")
        self.chair = auth("commune_chair", COMMUNE, sub="chair-binh")
        self.auditor = auth("auditor", "VN", sub="auditor-an")

    async def call(self, method: str, service: str, path: str, *, headers: dict[str, str],
                   expect: tuple[int, ...] = (200, 201, 202), **kw: Any) -> Any:
        r = await self.client.request(method, self.system.url(service) + path, headers=headers,
                                      **kw)
        assert r.status_code in expect, f"{method} {service}{path} → {r.status_code}: {r.text}"
        return r.json() if "json" in r.headers.get("content-type", "") else r.text

    async def get_or_none(self, service: str, path: str) -> Any:
        r = await self.client.get(self.system.url(service) + path, headers=self.officer)
        return r.json() if r.status_code == 200 else None

    async def classification(self, household_id: str) -> dict[str, Any] | None:
        return await self.get_or_none("eligibility", f"/v1/households/{household_id}/classification")

    async def programs(self, household_id: str) -> dict[str, dict[str, Any]]:
        body = await self.get_or_none("eligibility", f"/v1/households/{household_id}/programs")
        return {p["program_code"]: p for p in (body or {}).get("programs", [])}

    async def register(self, n: int, head: str, income: int, deprived: set[str]) -> str:
        created = await self.call("POST", "registry", "/v1/households", headers=self.officer,
                                  json=household_body(n, head))
        hid = created["household_id"]
        await self.call("POST", "registry", f"/v1/households/{hid}/surveys", headers=self.officer,
                        json=survey(income, deprived, "2026-10-15"))
        return hid

    async def timeline(self, household_id: str, *, tree: bool = False) -> list[dict[str, Any]]:
        path = f"/v1/households/{household_id}/timeline" + ("?view=tree" if tree else "")
        r = await self.client.get(self.system.url("supervision") + path, headers=self.auditor)
        assert r.status_code in (200, 404), r.text  # 404 until supervision saw an event of it
        return r.json()["events"] if r.status_code == 200 else []

    async def in_timeline(self, household_id: str, type_: str) -> dict[str, Any] | None:
        return next((e for e in await self.timeline(household_id) if e["type"] == type_), None)

    async def post_and_approve(self, households: list[str], *, complaint: bool) -> str:
        """Open the posting, (take a complaint through the public form), close, approve."""
        for hid in households:  # supervision must know each decision before it snapshots
            await eventually(lambda hid=hid: self.in_timeline(
                hid, "eligibility.classification.decided.v1"), timeout=60,
                message="supervision saw the decision")
        posting = await self.call("POST", "supervision", "/v1/postings", headers=self.officer,
                                  json={"commune_code": COMMUNE, "review_round": "2026-periodic"})
        posting_id = posting["posting_id"]
        if complaint:
            await self.public_complaint(posting_id)
        await self.call("POST", "supervision", f"/v1/postings/{posting_id}/close",
                        headers=auth("national_admin", sub="admin-minh"),
                        json={"reason": "Kiểm thử: rút ngắn thời gian niêm yết."})
        await self.call("POST", "supervision", f"/v1/postings/{posting_id}/approve",
                        headers=self.chair)
        return posting_id

    async def public_complaint(self, posting_id: str) -> None:
        """Step 3–4: the public page, a resident's complaint through its form, resolved."""
        page = await self.client.get(self.system.url("supervision")
                                     + f"/public/postings/{posting_id}")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        html = page.text
        assert "Nông Văn Thắng" in html
        assert not re.search(r"\b\d{12}\b", html), "a national ID is on the public page"
        assert "0912000001" not in html and "1978-04-12" not in html
        form = Form()
        form.feed(html)
        assert form.action, "the page has a complaint form"
        data: dict[str, str] = {}
        for name, options in form.fields.items():
            if "categ" in name:
                data[name] = "wrongly_excluded"
            elif options:  # the household concerned: "a household not on the list"
                data[name] = next((o for o in options if o and not re.fullmatch(
                    r"[0-9a-f-]{36}", o)), options[0])
            elif "contact" not in name and name != "website":
                data[name] = ("Nhà bà Lò Thị Sen ở thôn Nà Lừa rất khó khăn nhưng không có "
                              "tên trong danh sách.")
        action = form.action if form.action.startswith("http") else (
            self.system.url("supervision") + form.action)
        r = await self.client.post(action, data=data)
        assert r.status_code in (200, 201, 303), r.text
        listed = await self.call("GET", "supervision", "/v1/complaints", headers=self.officer,
                                 params={"commune_code": COMMUNE})
        mine = [c for c in listed if c.get("posting_id") == posting_id]
        assert len(mine) == 1 and mine[0]["category"] == "wrongly_excluded"
        cid = mine[0]["complaint_id"]
        await self.call("POST", "supervision", f"/v1/complaints/{cid}/assign",
                        headers=self.officer, json={"assignee": "officer-lan"})
        resolved = await self.call(
            "POST", "supervision", f"/v1/complaints/{cid}/resolve", headers=self.officer,
            json={"outcome": "not_upheld",
                  "note": "Đã xác minh: thu nhập 3.100.000 đồng/người/tháng, không thuộc diện nghèo."})
        assert resolved["status"] in ("resolved", "closed")


async def test_one_household_from_survey_to_settled_loan_in_one_timeline_and_trace(system):
    async with httpx.AsyncClient(timeout=20) as client:
        o = Officers(system, client)
        # 1. Register and survey (plus two neighbours, so the savings group has its 3 members).
        golden = await o.register(1, "Nông Văn Thắng", 1_200_000, GOLDEN_DEPRIVED)
        neighbours = [await o.register(n, f"Ma Văn Hùng {n}", 1_100_000,
                                       {"employment", "latrine", "water_source", "telecom"})
                      for n in (2, 3)]

        # 2. Poor, provisional, explained under VN-MDP-2022.
        decided = await eventually(lambda: o.classification(golden), timeout=60,
                                   message="eligibility classified the household")
        assert (decided["category"], decided["status"]) == ("poor", "provisional")
        assert decided["ruleset_id"] == "VN-MDP-2022"
        why = decided["explanation"]
        assert why["income_line_vnd"] == 1_500_000
        assert {d["code"] for d in why["deprived"]} == GOLDEN_DEPRIVED
        assert why["deprivation_count"] == 3 and why["threshold"] == 3 and not why["missing"]

        # 3–5. Posting, public page, complaint resolved, approval → recognized → eligible.
        await o.post_and_approve([golden, *neighbours], complaint=True)
        for hid in (golden, *neighbours):
            await eventually(lambda hid=hid: _status(o, hid, "recognized"), timeout=60,
                             message="the approved posting recognized the classification")
        progs = await o.programs(golden)
        assert progs["VBSP-POOR-LOAN"]["eligible"] is True

        # 6. Women's Union group, application, group review, chair's confirmation.
        group = await o.call("POST", "disbursement", "/v1/groups", headers=o.officer, json={
            "commune_code": COMMUNE, "village": VILLAGE, "organisation": "womens_union",
            "name": "Tổ TK&VV Hội Phụ nữ thôn Đồng Mán", "leader_name": "Hoàng Thị Hạnh"})
        for hid in (golden, *neighbours):
            async def member(hid=hid):
                r = await client.post(system.url("disbursement")
                                      + f"/v1/groups/{group['group_id']}/members",
                                      headers=o.officer, json={"household_id": hid})
                return r.status_code == 201
            await eventually(member, timeout=30, message="disbursement knows the household")
        await eventually(lambda: _eligible_at_disbursement(o, golden), timeout=30,
                         message="disbursement learnt the household is eligible")
        application = await o.call("POST", "disbursement", "/v1/applications", headers=o.officer,
                                   json={"household_id": golden, "programme_code": "VBSP-POOR-LOAN",
                                         "amount_vnd": 50_000_000, "term_months": 36,
                                         "purpose": "Nuôi bò sinh sản",
                                         "group_id": group["group_id"]})
        aid = application["application_id"]
        await o.call("POST", "disbursement", f"/v1/applications/{aid}/group-review",
                     headers=o.officer, json={"decision": "approve", "note": "Họp tổ 20/11"})
        await o.call("POST", "disbursement", f"/v1/applications/{aid}/confirm", headers=o.chair)

        # 7. The instruction on the partner topic (no national ID); accepted and settled.
        topic = disbursement_events.instructions_topic("vbsp")
        def of_golden(r: Any) -> bool:
            return json.loads(r.value).get("application_id") == aid

        records = await collect(system.infra.bootstrap_servers, topic, timeout=30,
                                until=lambda rs: any(of_golden(r) for r in rs))
        instruction = next(r for r in records if of_golden(r))
        assert header(instruction, "ce_type") == disbursement_events.INSTRUCTION_ISSUED
        body = json.loads(instruction.value)
        # keyed by the instruction: no internal household id reaches the bank
        assert instruction.key == body["instruction_id"].encode()
        assert golden not in instruction.value.decode() + instruction.key.decode()
        assert body["amount_vnd"] == 50_000_000 and body["programme_code"] == "VBSP-POOR-LOAN"
        assert "0080780" not in instruction.value.decode()
        settled = await eventually(lambda: _settled(o, aid), timeout=60,
                                   message="the reference partner settled the loan")
        assert settled["status"] == "disbursed"  # the application; its instruction is settled
        assert [s["status"] for s in settled["instruction"]["history"]] == [
            "approved", "sent", "accepted", "settled"]
        assert settled["instruction"]["bank_reference"].startswith("VBSP")

        # 8. The timeline: every step, in causal order, nested under its cause.
        expected = ["registry.household.registered.v1", "registry.household.surveyed.v1",
                    "eligibility.classification.decided.v1", "supervision.posting.opened.v1",
                    "supervision.posting.approved.v1",
                    "eligibility.classification.recognized.v1",
                    "eligibility.program_eligibility.changed.v1",
                    "disbursement.application.submitted.v1",
                    "disbursement.application.reviewed.v1",
                    "disbursement.application.confirmed.v1",
                    "disbursement.instruction.issued.v1"]
        events = await eventually(lambda: _timeline_has(o, golden, expected + [
            "disbursement.instruction.status_changed.v1"]), timeout=60,
            message="the timeline holds every step")
        types = [e["type"] for e in events]
        at = -1
        for step in expected:  # each step appears after the one before it
            assert step in types[at + 1:], f"{step} missing after position {at}: {types}"
            at = types.index(step, at + 1)
        position = {e["event_id"]: i for i, e in enumerate(events)}
        for i, e in enumerate(events):
            assert e["correlation_id"] and e["trace_id"], e
            assert e["summary"]["vi"] and e["summary"]["en"]
            if e["causation_id"] in position:  # a cause inside the timeline comes first
                assert position[e["causation_id"]] < i, (e, events[position[e["causation_id"]]])
        decided_event = next(e for e in events if e["type"] == expected[2])
        surveyed_event = next(e for e in events if e["type"] == expected[1])
        assert decided_event["causation_id"] == surveyed_event["event_id"]
        tree = await o.timeline(golden, tree=True)
        assert _find(tree, decided_event["event_id"], under=surveyed_event["event_id"])

        # 8b. The causal chain reaches the bank: each bank message that changed the instruction
        # is on the timeline (from the partner, with its reference), under the `sent` status, and
        # no entry's cause is missing from the timeline.
        def settled_on_timeline(evts: list[dict[str, Any]]) -> bool:
            return any(e["type"] == disbursement_events.INSTRUCTION_STATUS_CHANGED
                       and e["data"].get("status") == "settled" for e in evts)

        events = await eventually(lambda: _timeline_when(o, golden, settled_on_timeline),
                                  timeout=60, message="the settlement on the timeline")
        by_id = {e["event_id"]: e for e in events}
        orphans = [(e["type"], e["causation_id"]) for e in events
                   if e["causation_id"] and e["causation_id"] not in by_id]
        assert orphans == [], orphans
        settled_change = next(e for e in events if e["type"] ==
                              disbursement_events.INSTRUCTION_STATUS_CHANGED
                              and e["data"].get("status") == "settled")
        message = by_id[settled_change["causation_id"]]
        assert message["type"] == disbursement_events.BANK_MESSAGE_RECEIVED
        assert message["actor"] == "partner:vbsp" and message["data"]["status"] == "settled"
        assert message["data"]["bank_reference"].startswith("VBSP")
        assert by_id[message["causation_id"]]["data"].get("status") == "sent"

        # 9. Every service's processing of this chain is inside the officers' traces.
        await eventually(lambda: _traced(system, events), timeout=30,
                         message="spans of all four services are in the officers' traces")


async def _timeline_when(o: Officers, household_id: str,
                         done: Any) -> list[dict[str, Any]] | None:
    events = await o.timeline(household_id)
    return events if done(events) else None


async def test_a_new_survey_above_the_line_makes_the_household_just_escaped(system):
    async with httpx.AsyncClient(timeout=20) as client:
        o = Officers(system, client)
        hid = await o.register(11, "Nông Văn Thắng", 1_200_000, GOLDEN_DEPRIVED)
        await eventually(lambda: o.classification(hid), timeout=60, message="first decision")
        await o.post_and_approve([hid], complaint=False)
        await eventually(lambda: _status(o, hid, "recognized"), timeout=60, message="recognized poor")

        await o.call("POST", "registry", f"/v1/households/{hid}/surveys", headers=o.officer,
                     json=survey(2_600_000, {"latrine"}, "2026-11-20"))
        later = await eventually(lambda: _category(o, hid, "not_poor"), timeout=60,
                                 message="reclassified not poor")
        assert later["status"] == "provisional"
        await eventually(lambda: _decided_in_supervision(o, hid, later["classification_id"]),
                         timeout=60, message="supervision saw the new decision")
        await o.post_and_approve([], complaint=False)
        await eventually(lambda: _status(o, hid, "recognized"), timeout=60,
                         message="the second posting recognized it")
        progs = await eventually(lambda: _escaped(o, hid), timeout=60, message="just escaped")
        assert progs["VBSP-POOR-LOAN"]["eligible"] is False and progs["VBSP-POOR-LOAN"]["reason"]
        assert progs["VBSP-ESCAPED-LOAN"]["reason"]


async def _status(o: Officers, hid: str, status: str) -> dict[str, Any] | None:
    c = await o.classification(hid)
    return c if c and c["status"] == status else None


async def _category(o: Officers, hid: str, category: str) -> dict[str, Any] | None:
    c = await o.classification(hid)
    return c if c and c["category"] == category else None


async def _escaped(o: Officers, hid: str) -> dict[str, dict[str, Any]] | None:
    progs = await o.programs(hid)
    return progs if progs.get("VBSP-ESCAPED-LOAN", {}).get("eligible") else None


async def _decided_in_supervision(o: Officers, hid: str, classification_id: str) -> bool:
    return any(e["type"] == "eligibility.classification.decided.v1"
               and classification_id in json.dumps(e) for e in await o.timeline(hid))


async def _eligible_at_disbursement(o: Officers, hid: str) -> bool:
    h = await o.get_or_none("disbursement", f"/v1/households/{hid}")
    return bool(h and h["programs"].get("VBSP-POOR-LOAN", {}).get("eligible"))


async def _settled(o: Officers, aid: str) -> dict[str, Any] | None:
    a = await o.get_or_none("disbursement", f"/v1/applications/{aid}")
    return a if a and (a.get("instruction") or {}).get("status") == "settled" else None


async def _timeline_has(o: Officers, hid: str, types: list[str]) -> list[dict[str, Any]] | None:
    events = await o.timeline(hid)
    seen = {e["type"] for e in events}
    return events if all(t in seen for t in types) else None


def _find(nodes: list[dict[str, Any]], event_id: str, *, under: str | None) -> bool:
    """Whether `event_id` sits (at any depth) among the children of `under`."""
    for n in nodes:
        kids = n.get("children", [])
        if n["event_id"] == under:
            return any(k["event_id"] == event_id or _find(k.get("children", []), event_id,
                                                          under=None) for k in kids) \
                or _find(kids, event_id, under=None)
        if under is None and n["event_id"] == event_id:
            return True
        if _find(kids, event_id, under=under):
            return True
    return False


def consumed(span: dict[str, Any]) -> set[str]:
    """Ids of the messages a consumer span processed: its own (one message) or its links' (a
    batch, per the OpenTelemetry messaging conventions)."""
    ids = {lk.get("attributes", {}).get("messaging.message.id") for lk in span["links"]}
    return {i for i in {span["attributes"].get("messaging.message.id"), *ids} if i}


def _traced(system: System, events: list[dict[str, Any]]) -> bool:
    """Each service processed events of the chain in spans tied to an officer's request trace."""
    spans = system.spans()
    requests = {s["trace_id"] for s in spans if s["kind"] == "SERVER"
                and s["parent_span_id"] is None and s["name"].split()[0] in ("POST", "PATCH")}
    ids = {e["event_id"] for e in events}
    tied: dict[str, bool] = {}
    for s in spans:
        if s["kind"] == "CONSUMER" and consumed(s) & ids:
            ok = s["trace_id"] in requests or any(lk["trace_id"] in requests for lk in s["links"])
            tied[s["service"]] = tied.get(s["service"], False) or ok
    for e in events:  # every event of the chain was written inside an officer's trace
        assert e["trace_id"] in requests, e
    return all(tied.get(name) for name in ("eligibility", "supervision", "disbursement")) and any(
        s["service"] == "registry" and s["trace_id"] in requests for s in spans)
