"""`everydoor seed`: fill a demo commune through the public APIs, as the commune's officers would.

Imports households with surveys, waits for eligibility, posts the commune's list, takes one
complaint through the public form, approves the list, forms Women's Union savings-and-loan groups
and takes loans through to the reference bank partner; then a flood hits the loans' village (an
ad-hoc review of its households) and the golden loan is restructured. Before that, cadres of four
organisations are put in charge of the villages and their door-to-door visits of the review round
are imported (`POST /v1/imports?kind=visits`). Only HTTP: no service internals.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx

from services.demo.households import GOLDEN_HEAD, golden, household
from shared.auth import issue_token

T = TypeVar("T")

PROVINCE = "08"
COMMUNE = "08001"
VILLAGES = ["Thôn Đồng Mán", "Thôn Nà Lừa", "Thôn Khuổi Phầy", "Thôn Bản Khoan", "Thôn Nà Mường"]
REVIEW_ROUND = "2026-periodic"
SURVEY_DATE = date(2026, 10, 15)
LOAN_PURPOSES = ("Nuôi bò sinh sản", "Trồng chè và quế", "Nuôi lợn thịt", "Mua máy cày mini",
                 "Trồng ngô và sắn hàng hoá")


class SeedError(RuntimeError):
    """A step of the seed did not do what it should; the message says which and why."""


@dataclass
class Urls:
    """Base URLs of the four services."""

    registry: str
    eligibility: str
    disbursement: str
    supervision: str


@dataclass
class SeedResult:
    """What the seed made, for the tour."""

    commune_code: str
    imported: int = 0
    rejected: int = 0
    classified: int = 0
    posting_id: str | None = None
    golden_household_id: str | None = None
    golden_application_id: str | None = None
    loans: list[str] = field(default_factory=list)
    shock_id: str | None = None
    restructuring_id: str | None = None
    cadres: int = 0
    visits: int = 0
    visits_rejected: int = 0
    review_round: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept in .everydoor/seed.json)."""
        return dict(self.__dict__)


def wait_for(probe: Callable[[], T | None], *, what: str, timeout: float = 120.0,
             interval: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SeedError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def items(body: Any) -> list[dict[str, Any]]:
    """The rows of a list response: a bare list, or `{items: [...]}` for cursor-paged ones."""
    return body if isinstance(body, list) else body["items"]


# One person per role, each with their own `sub`: the histories name who did what, and the
# separation of duties (maker ≠ checker, compared by `sub`) sees different people.
DEMO_PEOPLE = {
    "national_admin": "demo-admin-thao", "province_officer": "demo-province-minh",
    "commune_officer": "demo-officer-lan", "commune_chair": "demo-chair-hung",
    "supervisor": "demo-supervisor-ha", "auditor": "demo-auditor-quang",
    "bank_partner": "demo-bank-vbsp",
}


class Client:
    """One HTTP client per role, scoped to the demo commune."""

    def __init__(self, urls: Urls, *, commune: str, timeout: float = 30.0) -> None:
        self.urls = urls
        self.http = httpx.Client(timeout=timeout)
        self._tokens: dict[str, str] = {}
        self.commune = commune

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def headers(self, role: str) -> dict[str, str]:
        """Bearer header for `role` scoped to the commune (national roles get VN)."""
        if role not in self._tokens:
            scope = "VN" if role in ("national_admin", "auditor") else self.commune
            self._tokens[role] = issue_token(role=role, scope=scope, sub=DEMO_PEOPLE[role])
        return {"Authorization": f"Bearer {self._tokens[role]}"}

    def call(self, method: str, url: str, *, role: str, ok: Iterable[int] = (200, 201, 202),
             **kw: Any) -> Any:
        """One request; a status outside `ok` raises with the problem body."""
        resp = self.http.request(method, url, headers={**self.headers(role), **kw.pop("headers", {})},
                                 **kw)
        if resp.status_code not in tuple(ok):
            raise SeedError(f"{method} {url} → {resp.status_code}: {resp.text[:500]}")
        ctype = resp.headers.get("content-type", "")
        return resp.json() if "json" in ctype else resp.text


def start_import(c: Client, lines: list[dict[str, Any]], *, kind: str = "households") -> str:
    """Upload NDJSON lines as a bulk import (households or visits); the job's id (it runs in the
    background)."""
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
    job = c.call("POST", f"{c.urls.registry}/v1/imports", role="commune_officer", content=body,
                 params={"kind": kind}, headers={"Content-Type": "application/x-ndjson"})
    return str(job["import_id"])


def wait_import(c: Client, job_id: str, *, timeout: float = 600) -> dict[str, Any]:
    """Wait until the import job is done (or failed); its final state."""
    def done() -> dict[str, Any] | None:
        state = c.call("GET", f"{c.urls.registry}/v1/imports/{job_id}", role="commune_officer")
        return state if state.get("status") in ("done", "failed") else None

    return wait_for(done, what="the import", timeout=timeout)


def import_households(c: Client, lines: list[dict[str, Any]]) -> tuple[int, int]:
    """Bulk-import NDJSON lines and wait for the job; (accepted, rejected)."""
    state = wait_import(c, start_import(c, lines))
    return int(state.get("accepted", 0)), int(state.get("rejected", 0))


def golden_external_ref(c: Client) -> str:
    """The golden household's own id (its external_ref)."""
    return str(golden(province_code=PROVINCE, commune_code=c.commune, village=VILLAGES[0],
                      survey_date=SURVEY_DATE, review_round=REVIEW_ROUND)["external_ref"])


def register_golden(c: Client) -> str:
    """Register the golden household one request at a time, as an officer in the field would."""
    body = golden(province_code=PROVINCE, commune_code=c.commune, village=VILLAGES[0],
                  survey_date=SURVEY_DATE, review_round=REVIEW_ROUND)
    survey = body.pop("survey")
    resp = c.http.post(f"{c.urls.registry}/v1/households", json=body,
                       headers=c.headers("commune_officer"))
    if resp.status_code == 409:  # registered by an earlier, interrupted seed: find it
        found = c.call("GET", f"{c.urls.registry}/v1/households", role="commune_officer",
                       params={"commune_code": c.commune, "q": GOLDEN_HEAD, "limit": 50})
        return next(str(h["household_id"]) for h in items(found)
                    if h.get("external_ref") == body["external_ref"])
    if resp.status_code != 201:
        raise SeedError(f"POST /v1/households → {resp.status_code}: {resp.text[:500]}")
    household_id = resp.json()["household_id"]
    c.call("POST", f"{c.urls.registry}/v1/households/{household_id}/surveys",
           role="commune_officer", json=survey)
    return str(household_id)


def classification(c: Client, household_id: str) -> dict[str, Any] | None:
    """The household's current classification at eligibility (None until decided)."""
    resp = c.http.get(f"{c.urls.eligibility}/v1/households/{household_id}/classification",
                      headers=c.headers("commune_officer"))
    return resp.json() if resp.status_code == 200 else None


def classified_households(c: Client, *, status: str | None = None) -> list[str]:
    """Ids of every household eligibility has classified in the commune (paged), or only those
    whose classification has `status` (`provisional`, `recognized`)."""
    out: list[str] = []
    filters = {"status": status} if status else {}
    while True:
        page = items(c.call("GET", f"{c.urls.eligibility}/v1/classifications",
                            role="commune_officer",
                            params={"commune_code": c.commune, "limit": 1000,
                                    "offset": len(out), **filters}))
        out += [r["household_id"] for r in page]
        if len(page) < 1000:
            return out


def supervision_saw_decision(c: Client, household_id: str) -> bool:
    """Whether supervision has the household's classification (so the posting will list it)."""
    resp = c.http.get(f"{c.urls.supervision}/v1/households/{household_id}/timeline",
                      headers=c.headers("auditor"))
    return resp.status_code == 200 and any(
        e["type"] == "eligibility.classification.decided.v1" for e in resp.json()["events"])


def run_posting(c: Client) -> str:
    """Post the list, take a resident's complaint through the public form, resolve, approve."""
    posting = c.call("POST", f"{c.urls.supervision}/v1/postings", role="commune_officer",
                     json={"commune_code": c.commune, "review_round": REVIEW_ROUND})
    posting_id = str(posting["posting_id"])
    form = {"category": "wrongly_excluded", "household": "not_on_list",
            "text": "Nhà ông Lò Văn Sính ở thôn Nà Lừa rất khó khăn nhưng không có tên trong danh sách."}
    resp = c.http.post(f"{c.urls.supervision}/public/postings/{posting_id}/complaints", data=form)
    if resp.status_code >= 400:
        raise SeedError(f"public complaint form → {resp.status_code}: {resp.text[:300]}")
    for complaint in items(c.call("GET", f"{c.urls.supervision}/v1/complaints",
                                  role="commune_officer", params={"commune_code": c.commune})):
        cid = complaint["complaint_id"]
        if complaint.get("status") in ("resolved", "rejected", "closed"):
            continue
        c.call("POST", f"{c.urls.supervision}/v1/complaints/{cid}/assign", role="commune_officer",
               json={"assignee": DEMO_PEOPLE["commune_officer"]})
        c.call("POST", f"{c.urls.supervision}/v1/complaints/{cid}/resolve", role="commune_officer",
               json={"outcome": "not_upheld",
                     "note": "Đã xác minh: thu nhập bình quân 3,1 triệu đồng/người/tháng, "
                             "không thuộc diện hộ nghèo."})
    # The demo does not wait three working days: a national admin closes the window early, with
    # the reason recorded on the posting and its event.
    c.call("POST", f"{c.urls.supervision}/v1/postings/{posting_id}/close", role="national_admin",
           json={"reason": "Demo: thời gian niêm yết rút ngắn để trình diễn quy trình."})
    c.call("POST", f"{c.urls.supervision}/v1/postings/{posting_id}/approve", role="commune_chair")
    return posting_id


def loan_candidates(c: Client, golden_id: str | None, *, village: str, limit: int) -> list[str]:
    """Recognized poor households of one village, the golden one (if any) first."""
    body = c.call("GET", f"{c.urls.eligibility}/v1/classifications", role="commune_officer",
                  params={"commune_code": c.commune, "category": "poor", "status": "recognized",
                          "limit": 1000})
    rows = [r["household_id"] for r in items(body)
            if r.get("household_id") != golden_id and r.get("village") in (None, village)]
    return ([golden_id, *rows] if golden_id else rows)[:limit]


def eligible_at_disbursement(c: Client, household_id: str, programme: str) -> bool:
    """Whether disbursement's own projection already lets the household apply for `programme`."""
    resp = c.http.get(f"{c.urls.disbursement}/v1/households/{household_id}",
                      headers=c.headers("commune_officer"))
    if resp.status_code != 200:
        return False
    return bool(resp.json().get("programs", {}).get(programme, {}).get("eligible"))


def take_loans(c: Client, households: list[str], *, village: str,
               on_confirmed: Callable[[str, str], None] | None = None) -> list[str]:
    """A Women's Union group in `village`; each member applies, the group reviews, the chair
    confirms (`on_confirmed(application_id, household_id)` after each confirmation)."""
    group = c.call("POST", f"{c.urls.disbursement}/v1/groups", role="commune_officer",
                   json={"commune_code": c.commune, "village": village,
                         "organisation": "womens_union", "name": f"Tổ TK&VV Hội Phụ nữ {village}",
                         "leader_name": "Hoàng Thị Hạnh"})
    group_id = group["group_id"]
    for hid in households:
        wait_for(partial(eligible_at_disbursement, c, hid, "VBSP-POOR-LOAN"),
                 what=f"disbursement to learn {hid} is eligible", timeout=60)
        c.call("POST", f"{c.urls.disbursement}/v1/groups/{group_id}/members",
               role="commune_officer", json={"household_id": hid})
    applications = []
    for i, hid in enumerate(households):
        app = c.call("POST", f"{c.urls.disbursement}/v1/applications", role="commune_officer",
                     json={"household_id": hid, "programme_code": "VBSP-POOR-LOAN",
                           "amount_vnd": 50_000_000, "term_months": 36, "group_id": group_id,
                           "purpose": LOAN_PURPOSES[i % len(LOAN_PURPOSES)]})
        aid = app["application_id"]
        c.call("POST", f"{c.urls.disbursement}/v1/applications/{aid}/group-review",
               role="commune_officer",
               json={"decision": "approve", "note": "Họp tổ ngày 20/11: nhất trí cho vay."})
        c.call("POST", f"{c.urls.disbursement}/v1/applications/{aid}/confirm", role="commune_chair")
        applications.append(aid)
        if on_confirmed is not None:
            on_confirmed(aid, hid)
    return applications


# The commune's cadres: name, organisation, young cadre, the villages in their charge (a village
# may have several: the young cadre sent to the grassroots shares two with older hands).
CADRES = (
    ("Hoàng Văn Thào", "party_cell", False, (VILLAGES[0], VILLAGES[1])),
    ("Nông Thị Hạnh", "womens_union", False, (VILLAGES[2], VILLAGES[3])),
    ("Lương Văn Pằn", "farmers_association", False, (VILLAGES[4],)),
    ("Lục Văn Quân", "youth_union", True, (VILLAGES[0], VILLAGES[4])),
)
ASSIGNED_FROM = date(2026, 1, 1)
GOLDEN_CADRE = "Lục Văn Quân"


def ensure_cadres(c: Client) -> dict[str, dict[str, Any]]:
    """The commune's cadres and their assignments (once: a re-run finds them by name);
    village → the cadres in charge of it (name → cadre)."""
    base = f"{c.urls.registry}/v1"
    known = {x["name"]: x for x in c.call("GET", f"{base}/cadres", role="commune_officer",
                                          params={"commune_code": c.commune})}
    by_village: dict[str, dict[str, Any]] = {}
    for i, (name, organisation, young, villages) in enumerate(CADRES):
        cadre = known.get(name) or c.call("POST", f"{base}/cadres", role="commune_officer", json={
            "commune_code": c.commune, "name": name, "organisation": organisation,
            "young_cadre": young, "phone": f"09120000{i:02d}"})
        if not c.call("GET", f"{base}/assignments", role="commune_officer",
                      params={"cadre_id": cadre["cadre_id"]}):
            c.call("POST", f"{base}/assignments", role="commune_officer", json={
                "cadre_id": cadre["cadre_id"], "commune_code": c.commune,
                "villages": list(villages), "valid_from": ASSIGNED_FROM.isoformat()})
        for v in villages:
            by_village.setdefault(v, {})[name] = cadre
    return by_village


def visit_plan(index: int, *, on: date, today: date) -> list[tuple[int, str, dict[str, Any]]]:
    """A household's knocks in the round as (days before `on`, outcome, extra fields), drawn
    from its index: most are surveyed at the first knock; some were not home first, some asked
    for a follow-up (half of them still open), a few refused, a few were never reached after
    three attempts, and about one in twenty has no visit logged (surveyed at the commune office:
    the coverage lists them as unvisited)."""
    r = random.Random(f"{REVIEW_ROUND}-visits-{index}").random()
    if r < 0.05:
        return []
    if r < 0.09:
        return [(14, "not_home", {"note": "Cả nhà đi làm nương"}), (7, "not_home", {}),
                (0, "not_home", {"note": "Hàng xóm nói gia đình đi làm ăn xa"})]
    if r < 0.15:
        due = on + timedelta(days=14) if r < 0.12 else today + timedelta(days=14)
        return [(0, "follow_up", {"note": "Hẹn bổ sung giấy tờ thẻ BHYT",
                                  "next_visit_due": due.isoformat()})]
    if r < 0.25:
        return [(6, "not_home", {"note": "Chủ hộ đi chợ phiên"}), (0, "surveyed", {})]
    if r < 0.30:
        return [(20, "follow_up", {"next_visit_due": (on - timedelta(days=5)).isoformat()}),
                (0, "surveyed", {})]
    if r < 0.33:
        return [(0, "refused", {"note": "Chủ hộ không muốn khai thu nhập"})]
    return [(0, "surveyed", {})]


def visit_lines(households: list[tuple[str, str]], cadres: dict[str, dict[str, Any]], *,
                golden_ref: str | None = None, start: int = 0) -> list[dict[str, Any]]:
    """The round's visits of `households` ((external_ref, village), numbered from `start`) as
    visit-import lines; each line's external_ref is derived from the household's (re-runs
    record nothing twice)."""
    today = date.today()
    on = min(SURVEY_DATE, today)
    out = []
    for n, (ref, village) in enumerate(households, start=start):
        in_charge = cadres[village]
        names = sorted(in_charge)
        name = GOLDEN_CADRE if ref == golden_ref and GOLDEN_CADRE in in_charge \
            else names[n % len(names)]
        plan = [(0, "surveyed", {"note": "Gặp chủ hộ, rà soát cùng tổ"})] if ref == golden_ref \
            else visit_plan(n, on=on, today=today)
        for k, (days, outcome, extra) in enumerate(plan, start=1):
            out.append({"external_ref": f"VISIT-{REVIEW_ROUND}-{ref}-{k}",
                        "household_external_ref": ref, "cadre_id": in_charge[name]["cadre_id"],
                        "visited_on": (on - timedelta(days=days)).isoformat(),
                        "outcome": outcome, "review_round": REVIEW_ROUND, **extra})
    return out


def seed_visits(c: Client, households: list[tuple[str, str]], *, golden_ref: str | None,
                start: int, result: SeedResult) -> None:
    """Cadres in charge of the villages, and their visits of the round imported in bulk."""
    cadres = ensure_cadres(c)
    result.cadres = len({x["cadre_id"] for v in cadres.values() for x in v.values()})
    state = wait_import(c, start_import(c, visit_lines(households, cadres, golden_ref=golden_ref,
                                                       start=start), kind="visits"))
    if state.get("status") != "done":
        raise SeedError(f"the visit import {state.get('import_id')} failed: {state.get('message')}")
    result.visits = int(state.get("accepted", 0)) + int(state.get("skipped", 0))
    result.review_round = REVIEW_ROUND
    # A household line the registry refused has its visits refused too (no such household).
    result.visits_rejected = int(state.get("rejected", 0))


FLOOD_TITLE = f"Lũ quét {VILLAGES[0]}"


def declare_flood(c: Client) -> str:
    """A flood over the loans' village (once: a re-run finds it); its shock id."""
    known = c.call("GET", f"{c.urls.registry}/v1/shocks", role="national_admin",
                   params={"commune_code": c.commune})
    for shock in items(known):
        if shock.get("title") == FLOOD_TITLE:
            return str(shock["shock_id"])
    shock = c.call("POST", f"{c.urls.registry}/v1/shocks", role="national_admin", json={
        "type": "flood", "occurred_on": date.today().isoformat(), "severity": "severe",
        "title": FLOOD_TITLE, "areas": [{"commune_code": c.commune, "villages": [VILLAGES[0]]}]})
    return str(shock["shock_id"])


def restructure_after_flood(c: Client, *, application_id: str, household_id: str,
                            shock_id: str) -> str:
    """The flooded borrower's loan: a 6-month extension, requested, reviewed by the group,
    confirmed by the chair, applied by the bank (once: a re-run finds it); its id."""
    app = c.call("GET", f"{c.urls.disbursement}/v1/applications/{application_id}",
                 role="commune_officer")
    loan_id = app["instruction"]["instruction_id"]
    base = f"{c.urls.disbursement}/v1"
    done = [r for r in c.call("GET", f"{base}/loans/{loan_id}/restructurings",
                              role="commune_officer") if r["status"] == "applied"]
    if done:
        return str(done[0]["restructuring_id"])

    def exposed() -> bool | None:
        view = c.call("GET", f"{base}/households/{household_id}", role="commune_officer")
        return any(s["shock_id"] == shock_id for s in view.get("shocks", [])) or None

    wait_for(exposed, what="disbursement to learn the flood hit the borrower", timeout=120)
    rid = c.call("POST", f"{base}/loans/{loan_id}/restructurings", role="commune_officer", json={
        "option": "extension", "months": 6, "shock_id": shock_id,
        "reason": "Lũ cuốn trôi chuồng bò và 2 con bò sinh sản"})["restructuring_id"]
    c.call("POST", f"{base}/restructurings/{rid}/group-review", role="commune_officer",
           json={"decision": "approve", "note": "Họp tổ: nhất trí gia hạn 6 tháng."})
    c.call("POST", f"{base}/restructurings/{rid}/confirm", role="commune_chair")
    return str(rid)


def instruction_status(c: Client, application_id: str) -> str | None:
    """The status of the application's instruction at the bank (None before one is issued)."""
    app = c.call("GET", f"{c.urls.disbursement}/v1/applications/{application_id}",
                 role="commune_officer")
    return (app.get("instruction") or {}).get("status")


def seed(urls: Urls, *, households: int, commune: str = COMMUNE, start: int = 0,
         with_golden: bool = True, log: Callable[[str], None] = print) -> SeedResult:
    """Seed `households` demo households (and the golden path once) through the public APIs."""
    c = Client(urls, commune=commune)
    result = SeedResult(commune_code=commune)
    try:
        lines = [household(i, province_code=PROVINCE, commune_code=commune, villages=VILLAGES,
                           survey_date=SURVEY_DATE, review_round=REVIEW_ROUND)
                 for i in range(start, start + households)]
        t0 = time.monotonic()
        result.imported, result.rejected = import_households(c, lines)
        log(f"  imported {result.imported} households ({result.rejected} rejected) "
            f"in {time.monotonic() - t0:.1f}s")
        visited = [(line["external_ref"], line["location"]["village"]) for line in lines]
        golden_ref = None
        if with_golden:
            result.golden_household_id = register_golden(c)
            golden_ref = golden_external_ref(c)
            visited.append((golden_ref, VILLAGES[0]))
        t0 = time.monotonic()
        seed_visits(c, visited, golden_ref=golden_ref, start=start, result=result)
        log(f"  {result.cadres} cadres in charge of {len(VILLAGES)} villages; {result.visits} "
            f"visits of round {REVIEW_ROUND} in the visit import ({result.visits_rejected} "
            f"rejected) in {time.monotonic() - t0:.1f}s")
        if not with_golden:
            return result
        golden_id = result.golden_household_id
        assert golden_id is not None
        wait_for(lambda: classification(c, golden_id), what="the golden household's classification")
        def all_classified() -> list[str] | None:
            ids = classified_households(c)
            return ids if len(ids) > result.imported else None  # + the golden household

        classified = wait_for(all_classified, what="eligibility to classify every household",
                              timeout=300)
        result.classified = len(classified)
        log(f"  eligibility classified {result.classified} households")
        for hid in classified:  # the posting snapshots what supervision has seen
            wait_for(partial(supervision_saw_decision, c, hid),
                     what=f"supervision to see the decision on {hid}", timeout=120)
        result.posting_id = run_posting(c)
        wait_for(lambda: (cl := classification(c, golden_id)) and cl.get("status") == "recognized",
                 what="the approved posting to be recognized")
        log(f"  posting {result.posting_id} approved; classifications recognized")
        candidates = loan_candidates(c, golden_id, village=VILLAGES[0], limit=6)
        if len(candidates) < 3:
            raise SeedError(f"only {len(candidates)} recognized poor households in {VILLAGES[0]}; "
                            "a savings-and-loan group needs 3 (seed more households)")
        result.loans = take_loans(c, candidates, village=VILLAGES[0])
        result.golden_application_id = result.loans[0]
        wait_for(lambda: instruction_status(c, result.loans[0]) == "settled",
                 what="the reference bank partner to settle the golden loan", timeout=120)
        log(f"  {len(result.loans)} loans confirmed; the golden loan is settled")
        result.shock_id = declare_flood(c)
        result.restructuring_id = restructure_after_flood(
            c, application_id=result.loans[0], household_id=candidates[0],
            shock_id=result.shock_id)
        rid = result.restructuring_id
        wait_for(lambda: c.call("GET", f"{c.urls.disbursement}/v1/restructurings/{rid}",
                                role="commune_officer")["status"] == "applied" or None,
                 what="the reference bank partner to apply the golden loan's restructuring",
                 timeout=120)
        log(f"  flood {result.shock_id} declared over {VILLAGES[0]}; the golden loan is "
            "restructured (6-month extension)")
        return result
    finally:
        c.close()
