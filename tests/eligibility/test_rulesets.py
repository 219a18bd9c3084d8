"""Rule sets as data: what the shipped files say, what validation refuses, local overrides."""

from __future__ import annotations

import copy
import random
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml

from services.eligibility import domain
from services.eligibility.__main__ import spec
from services.eligibility.config import RULESETS_DIR
from services.eligibility.handlers.common import load_rulebook, read_document
from tests.eligibility.conftest import Stack, admin
from tests.eligibility.conftest import test_settings as settings_for  # not collected as a test
from tests.support.apps import running
from tests.support.wait import eventually

EXAMPLE = RULESETS_DIR / "examples" / "province-override.yaml"


def docs() -> list[tuple[str, dict]]:
    return [(p.name, read_document(p)) for p in sorted(RULESETS_DIR.glob("*.yaml"))]


def test_shipped_rule_sets_say_what_the_decrees_say():
    book = load_rulebook([RULESETS_DIR])
    r22, r27 = book.get("VN-MDP-2022"), book.get("VN-MDP-2027")
    assert (r22.effective_from, r22.effective_to) == (date(2022, 1, 1), date(2026, 12, 31))
    assert (r27.effective_from, r27.effective_to) == (date(2027, 1, 1), date(2030, 12, 31))
    assert "Decree 07/2021/ND-CP" in r22.legal_basis[0]
    assert any("351/2025" in b for b in r22.legal_basis)
    assert "Decree 351/2025/ND-CP" in r27.legal_basis[0]
    assert r22.income_lines_vnd == {"rural": 1_500_000, "urban": 2_000_000}
    assert r27.income_lines_vnd == {"rural": 2_200_000, "urban": 2_800_000}
    assert len(r22.indicators) == 12 and len({i.dimension for i in r22.indicators}) == 6
    assert "information_access" not in r27.indicator_codes
    assert {"digital_services", "waste_treatment"} <= set(r27.indicator_codes)
    for rs in (r22, r27):
        for i in rs.indicators:
            assert i.name_vi and i.name_en and i.definition and i.dimension
    # unconfirmed values are marked in the data, not hidden in code
    assert r27.is_unconfirmed("middle_lines_vnd")
    assert not r27.is_unconfirmed("income_lines_vnd")
    assert not r22.is_unconfirmed("income_lines_vnd")
    assert r22.indicator("housing_quality").unconfirmed
    assert not r22.indicator("employment").unconfirmed
    assert r27.indicator("digital_services").unconfirmed


def build(*pairs: tuple[str, dict]) -> domain.RuleBook:
    return domain.build(list(pairs))


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d.pop("legal_basis"), "legal_basis: must name at least one legal text"),
    (lambda d: d.update(effective_to="2021-01-01"), "effective_to: is before effective_from"),
    (lambda d: d.update(effective_from="next year"), "effective_from: must be a date"),
    (lambda d: d["income_lines_vnd"].pop("urban"), "income_lines_vnd: must give exactly"),
    (lambda d: d["income_lines_vnd"].update(rural=-5), "income_lines_vnd.rural: must be a positive"),
    (lambda d: d["middle_lines_vnd"].update(rural=1_000_000),
     "middle_lines_vnd.rural: must be above the income line"),
    (lambda d: d.update(deprivation_threshold=13), "deprivation_threshold: must be a whole number"),
    (lambda d: d["indicators"][0].pop("name_vi"), "indicators[0].name_vi: must be a non-empty"),
    (lambda d: d["indicators"][1].update(dimension="wellbeing"),
     "indicators[1].dimension: unknown dimension"),
    (lambda d: d["indicators"].append(dict(d["indicators"][0])), "given twice"),
    (lambda d: d["unconfirmed"].append({"path": "colour"}), "unknown path 'colour'"),
])
def test_validation_names_the_file_and_field(change, words):
    name, doc = docs()[0]
    broken = copy.deepcopy(doc)
    change(broken)
    with pytest.raises(domain.RuleSetError) as err:
        build((name, broken))
    assert words in str(err.value) and name in str(err.value)


def test_two_national_rule_sets_in_force_on_the_same_day_are_refused():
    (n1, d1), (n2, d2) = docs()
    overlapping = copy.deepcopy(d2) | {"effective_from": "2026-06-01"}
    with pytest.raises(domain.RuleSetError, match="both in force on 2026-06-01"):
        build((n1, d1), (n2, overlapping))


def test_a_province_override_wins_in_its_province_and_dates_only():
    book = build(*docs(), ("p99.yaml", read_document(EXAMPLE)))
    local = book.get("VN-MDP-2022-P99")
    assert local.is_local and local.extends == "VN-MDP-2022"
    assert local.indicator_codes == book.get("VN-MDP-2022").indicator_codes
    assert book.select(date(2025, 5, 1), "99").id == "VN-MDP-2022-P99"
    assert book.select(date(2025, 5, 1), "01").id == "VN-MDP-2022"
    assert book.select(date(2023, 12, 31), "99").id == "VN-MDP-2022"  # before its dates
    assert book.select(date(2027, 1, 1), "99").id == "VN-MDP-2027"
    # 1,800,000 rural: middle nationally, at-or-below the province's 2,000,000 line
    answers = {c: c in ("telecom", "latrine", "nutrition") for c in local.indicator_codes}
    assert domain.classify(local, area_type="rural", income_per_capita_vnd=1_800_000,
                           deprivations=answers).category == "poor"
    assert domain.classify(book.get("VN-MDP-2022"), area_type="rural",
                           income_per_capita_vnd=1_800_000,
                           deprivations=answers).category == "middle"


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d["income_lines_vnd"].update(rural=1_400_000),
     "income_lines_vnd.rural: a local line may only be higher"),
    (lambda d: d.update(extends="VN-MDP-1999"), "extends: unknown base rule set"),
    (lambda d: d.update(province_codes=[]), "province_codes: a local override must name"),
    (lambda d: d.update(deprivation_threshold=2), "only changes lines and dates"),
])
def test_override_validation(change, words):
    doc = copy.deepcopy(read_document(EXAMPLE))
    change(doc)
    with pytest.raises(domain.RuleSetError, match=words):
        build(*docs(), ("p99.yaml", doc))


def test_a_folder_with_a_broken_file_names_it(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(domain.RuleSetError, match="bad.yaml: not valid YAML/JSON"):
        load_rulebook([RULESETS_DIR, tmp_path])


async def test_a_reload_on_one_replica_reaches_the_other(stack: Stack, tmp_path: Path):
    """A second replica over the same database, with its own rule-set folder, reloads; the
    stack (which never sees that folder) decides the next surveys by the reloaded rules and
    records the digest that was activated."""
    province = f"{random.randint(40, 59)}"
    rid = f"VN-MDP-2022-P{province}"
    for path in RULESETS_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    doc = read_document(EXAMPLE) | {"id": rid, "province_codes": [province]}

    def write(rural: int) -> None:
        doc["income_lines_vnd"] = {"rural": rural, "urban": 2_500_000}
        (tmp_path / f"{rid}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                              encoding="utf-8")

    write(2_000_000)
    # the second replica only serves HTTP, so the stack's consumers decide every survey
    other = replace(spec(settings_for(tmp_path)), consumers=lambda rt: ())
    async with running(other) as replica:
        # a replica starting with other files decides by the active rule sets until a reload
        r = await replica.client.get(f"/v1/rulesets/{rid}", headers=admin())
        assert r.status_code == 404, r.text

        async def reload() -> str:
            r = await replica.client.post(f"/v1/rulesets/{rid}/reevaluate", headers=admin())
            assert r.status_code == 202, r.text

            async def done() -> bool:
                job = (await replica.client.get(r.headers["location"], headers=admin())).json()
                return job["status"] == "done"

            await eventually(done, message="re-evaluation done")
            return (await replica.client.get(f"/v1/rulesets/{rid}", headers=admin())
                    ).json()["digest"]

        digests = []
        # 1,900,000 then 2,050,000 rural: middle nationally, poor under the reloaded lines only
        for rural, income in ((2_000_000, 1_900_000), (2_100_000, 2_050_000)):
            write(rural)
            digest = await reload()
            listed = (await stack.client.get(f"/v1/rulesets/{rid}", headers=admin())).json()
            assert listed.get("digest") == digest, listed
            h = stack.household(province=province)
            await h.register()
            await h.survey(income=income, day=date(2026, 4, 1))
            c = await stack.classification(h.id)
            assert (c["category"], c["ruleset_id"]) == ("poor", rid), c
            assert c["ruleset_digest"] == c["explanation"]["ruleset_digest"] == digest
            assert c["explanation"]["income_line_vnd"] == rural
            digests.append(digest)
        assert digests[0] != digests[1]
