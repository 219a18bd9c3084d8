"""Pure registry rules (no I/O): names, members, surveys, diffs, admin-unit and import readers."""

from __future__ import annotations

from datetime import date

from services.registry import domain, events, schemas
from services.registry.domain import imports
from services.registry.domain.admin_units import parse_csv, unknown_parents
from services.registry.handlers.common import snapshot

TODAY = date(2025, 11, 24)


def test_names_lose_diacritics_case_and_extra_spaces():
    assert domain.normalise_name("Nguyễn  Văn A") == "nguyen van a"
    assert domain.normalise_name("ĐẶNG Thị Đào") == "dang thi dao"
    assert domain.normalise_name(" Lò Thị Mai ") == domain.normalise_name("lo thi mai")


def test_member_rules_name_each_bad_field():
    ok = {"relation": "head", "date_of_birth": date(1980, 1, 1), "national_id": "1" * 12}
    assert domain.member_violations([ok], today=TODAY) == []
    bad = domain.member_violations([
        {**ok, "date_of_birth": date(2030, 1, 1)}, {**ok, "relation": "head"},
        {**ok, "relation": "child", "date_of_birth": date(1850, 1, 1), "national_id": "2" * 12}],
        today=TODAY)
    assert {v.field for v in bad} == {"members", "members.0.date_of_birth",
                                      "members.1.national_id", "members.2.date_of_birth"}
    assert domain.head_after([{"relation": "spouse"}])[0].field == "relation"


def test_survey_rules():
    bad = domain.survey_violations(survey_date=date(2026, 1, 1), income_per_capita_vnd=-1,
                                   deprivations={"latrine": True, "yacht": False}, today=TODAY,
                                   prefix="survey.")
    assert [v.field for v in bad] == ["survey.survey_date", "survey.income_per_capita_vnd",
                                      "survey.deprivations.yacht"]
    assert set(domain.INDICATOR_CODES) == set(events.INDICATOR_CODES)
    assert set(domain.INDICATOR_CODES) == set(schemas.IndicatorCode.__args__)


def test_diff_is_field_level_and_members_are_keyed_by_id():
    before = {"version": 1, "address": None, "location": {"village": "A"},
              "members": [{"member_id": "m1", "full_name": "X", "relation": "head"}]}
    after = {"version": 2, "address": "Xóm 3", "location": {"village": "B"},
             "members": [{"member_id": "m1", "full_name": "Y", "relation": "head"},
                         {"member_id": "m2", "full_name": "Z", "relation": "child"}]}
    assert domain.diff(before, after) == [
        {"field": "address", "before": None, "after": "Xóm 3"},
        {"field": "location.village", "before": "A", "after": "B"},
        {"field": "members.m1.full_name", "before": "X", "after": "Y"},
        {"field": "members.m2.full_name", "before": None, "after": "Z"},
        {"field": "members.m2.relation", "before": None, "after": "child"},
    ]


def test_if_match_forms():
    assert [domain.parse_if_match(h) for h in ('"3"', "3", 'W/"3"', "abc", None)] == [
        3, 3, 3, None, None]


def test_admin_unit_csv_is_checked_line_by_line():
    units, errors = parse_csv([
        "code,level,name,parent_code,area_type\n", "01,province,Thành phố Hà Nội,,\n",
        "01001,commune,Phường Hoàn Kiếm,01,urban\n", "0100,commune,Xã Sai,01,rural\n",
        "02001,commune,Xã Mồ Côi,02,rural\n", "01001,commune,Lặp,01,rural\n"])
    assert [u.code for u in units] == ["01", "01001", "02001"]
    assert [(line, v.field) for line, v in errors] == [(4, "code"), (6, "code")]
    assert [v.message for v in unknown_parents(units, set())] == [
        "commune 02001: unknown province 02"]
    assert parse_csv(["code,name\n"])[1][0][1].field == "header"


def test_csv_rows_group_into_households_by_external_ref_with_member_lines():
    text = ("external_ref,province_code,commune_code,village,full_name,national_id,"
            "date_of_birth,sex,relation,disability,survey_date,review_round,"
            "income_per_capita_vnd,dep_latrine,fact_housing_area_m2\n"
            "a,01,01001,T,Head A,111111111111,1970-01-01,male,head,,2025-01-01,2025,10,1,20.5\n"
            "a,,,,Child A,111111111112,2010-01-01,female,child,yes,,,,,\n"
            "b,01,01001,T,Head B,111111111113,1970-01-01,male,head,perhaps,,,,,\n")
    a, b = list(imports.csv_lines(text.splitlines(keepends=True)))
    assert a.line == 2 and a.member_lines == [2, 3] and a.errors == []
    assert a.body is not None and [m["full_name"] for m in a.body["members"]] == ["Head A",
                                                                                 "Child A"]
    assert a.body["members"][1]["disability"] is True
    assert a.body["survey"] == {"survey_date": "2025-01-01", "review_round": "2025",
                                "income_per_capita_vnd": 10, "deprivations": {"latrine": True},
                                "facts": {"housing_area_m2": 20.5}}
    assert "survey" not in (b.body or {})
    assert [v.field for v in b.errors] == ["members.0.disability"]


def test_ndjson_lines_report_unreadable_lines():
    got = list(imports.ndjson_lines(['{"a": 1}\n', "\n", "{oops\n", "[]\n"]))
    assert [(r.line, r.body is None) for r in got] == [(1, False), (3, True), (4, True)]
    assert imports.content_hash({"b": 1, "a": [1, 2]}) == imports.content_hash({"a": [1, 2], "b": 1})


def test_the_snapshot_satisfies_the_published_contract():
    h = {"id": "5b1e0c9e-0000-4000-8000-000000000001", "version": 3, "status": "active",
         "external_ref": None, "area_type": "rural", "province_code": "01",
         "commune_code": "01001", "village": "Thôn Một", "address": None, "phone": None,
         "head_name": "Old", "verification": [{"complaint_id": "C1"}],
         "possible_duplicates": [], "current_survey_id": None, "archive_reason": None}
    members = [{"id": "m1", "full_name": "Lò Văn A", "national_id": "1" * 12,
                "date_of_birth": date(1970, 1, 1), "sex": "male", "relation": "head",
                "removed_at": None},
               {"id": "m2", "full_name": "Gone", "national_id": "2" * 12,
                "date_of_birth": date(1990, 1, 1), "sex": "male", "relation": "child",
                "removed_at": TODAY}]
    snap = events.HouseholdSnapshotV1.model_validate(snapshot(h, members))
    assert snap.head_name == "Lò Văn A" and [m.member_id for m in snap.members] == ["m1"]
    assert snap.verification_requested and snap.verification_complaint_ids == ["C1"]
    assert snap.location.commune_code == "01001" and snap.location.village == "Thôn Một"


def test_a_visit_is_not_in_the_future_and_a_follow_up_says_when_to_come_back():
    ok = domain.visit_violations(visited_on=TODAY, outcome="follow_up",
                                 next_visit_due=date(2025, 12, 1), today=TODAY)
    assert ok == []
    bad = domain.visit_violations(visited_on=date(2025, 11, 25), outcome="follow_up",
                                  next_visit_due=None, today=TODAY)
    assert [v.field for v in bad] == ["visited_on", "next_visit_due"]
    before = domain.visit_violations(visited_on=TODAY, outcome="not_home",
                                     next_visit_due=TODAY, today=TODAY)
    assert [v.field for v in before] == ["next_visit_due"]


def test_a_cadre_holds_a_village_at_most_once_on_any_day():
    jan_may = domain.Period(date(2025, 1, 1), date(2025, 5, 31))
    existing = [("a1", jan_may, ["Thôn 1", "Thôn 2"])]
    june_on = domain.Period(date(2025, 6, 1), None)
    may_on = domain.Period(date(2025, 5, 31), None)
    assert domain.overlapping_villages(villages=["Thôn 1"], period=june_on,
                                       existing=existing) == {}
    assert domain.overlapping_villages(villages=["Thôn 2", "Thôn 3"], period=may_on,
                                       existing=existing) == {"Thôn 2": "a1"}
    assert domain.overlapping_villages(villages=["Thôn 3"], period=may_on,
                                       existing=existing) == {}
    assert [v.field for v in domain.villages_violations(["Thôn 1", "Thôn 1"])] == ["villages.1"]
    assert domain.period_violations(domain.Period(date(2025, 2, 1), date(2025, 1, 1)))
