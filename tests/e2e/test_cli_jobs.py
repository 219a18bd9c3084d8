"""`everydoor import FILE` and `everydoor reevaluate RULESET` against the running platform (the
four services as processes on a fresh embedded broker and PostgreSQL), as an operator runs them:
exit status, the summary line, the error CSV written next to the file, and what the services
then hold."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import httpx
import pytest

from services.cli import main
from tests.support.apps import auth
from tests.support.system import System, running_system
from tests.support.wait import eventually_sync

COMMUNE = "01001"


@pytest.fixture(scope="module")
def system(servers):
    """The four services as processes."""
    with running_system() as s:
        yield s


@pytest.fixture
def urls(system: System, monkeypatch: pytest.MonkeyPatch) -> System:
    """The CLI pointed at this system (EVERYDOOR_<SERVICE>_URL), no token in the environment
    (dev mode issues one)."""
    for name in ("registry", "eligibility", "disbursement", "supervision"):
        monkeypatch.setenv(f"EVERYDOOR_{name.upper()}_URL", system.url(name))
    monkeypatch.delenv("EVERYDOOR_TOKEN", raising=False)
    return system


def household(rng: random.Random, ref: str) -> dict:
    """One NDJSON line: a household of two with an inline survey."""
    return {"external_ref": ref, "area_type": "rural",
            "location": {"province_code": "01", "commune_code": COMMUNE, "village": "Thôn CLI"},
            "members": [{"full_name": f"Hộ {ref}", "national_id": f"{rng.randrange(10**12):012d}",
                         "date_of_birth": "1975-03-01", "sex": "female", "relation": "head"},
                        {"full_name": f"Con {ref}", "national_id": f"{rng.randrange(10**12):012d}",
                         "date_of_birth": "2012-05-01", "sex": "male", "relation": "child"}],
            "survey": {"survey_date": "2026-09-15", "review_round": "2026",
                       "income_per_capita_vnd": rng.choice([900_000, 1_400_000, 2_600_000]),
                       "deprivations": {"health_insurance": True, "latrine": rng.random() < .5}}}


def test_import_follows_the_job_and_writes_the_rejected_rows_next_to_the_file(
        urls: System, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    lines = [json.dumps(household(rng, f"cli-{i}")) for i in range(40)]
    lines.insert(7, '{"external_ref": "broken", ')                      # line 8: not JSON
    bad = household(rng, "cli-bad")
    bad["location"]["commune_code"] = "99999"
    lines.insert(20, json.dumps(bad))                                    # line 21: no commune
    path = tmp_path / "round-2026.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    status = main(["import", str(path), "--interval", "0.1"])

    out = capsys.readouterr().out
    assert status == 3, out  # finished, with rejected rows
    errors_file = tmp_path / "round-2026.ndjson.errors.csv"
    assert "done — 40 accepted, 0 skipped, 2 rejected of 42 rows" in out, errors_file.read_text()
    errors_file = tmp_path / "round-2026.ndjson.errors.csv"
    assert f"errors: {errors_file}" in out
    with errors_file.open(encoding="utf-8") as f:
        rejected = {row["line"]: row for row in csv.DictReader(f)}
    assert set(rejected) == {"8", "21"}
    assert "commune" in rejected["21"]["field"] + rejected["21"]["message"]

    with httpx.Client(base_url=urls.url("registry")) as client:
        listed = client.get("/v1/households", params={"commune_code": COMMUNE, "limit": 200},
                            headers=auth("national_admin")).json()
    refs = {h.get("external_ref") for h in (listed["items"] if isinstance(listed, dict)
                                            else listed)}
    assert {f"cli-{i}" for i in range(40)} <= refs

    # The same file again: idempotent, every good line skipped, the same two rejected.
    assert main(["import", str(path), "--interval", "0.1"]) == 3
    assert "done — 0 accepted, 40 skipped, 2 rejected of 42 rows" in capsys.readouterr().out


def test_import_kind_visits_records_visits_by_household_ref_and_writes_rejected_rows(
        urls: System, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(5)
    households = tmp_path / "village.ndjson"
    households.write_text("".join(json.dumps(household(rng, f"door-{i}")) + "\n"
                                  for i in range(3)), encoding="utf-8")
    assert main(["import", str(households), "--interval", "0.1"]) == 0
    with httpx.Client(base_url=urls.url("registry")) as client:
        cadre = client.post("/v1/cadres", headers=auth("national_admin"), json={
            "commune_code": COMMUNE, "name": "Lò Văn Khánh", "organisation": "youth_union",
            "young_cadre": True}).json()["cadre_id"]
    path = tmp_path / "visits.csv"
    path.write_text(
        "external_ref,household_external_ref,cadre_id,visited_on,outcome,next_visit_due,"
        "review_round\n"
        + "".join(f"v-{i},door-{i},{cadre},2026-09-0{i + 1},surveyed,,2026\n" for i in range(3))
        + f"v-3,door-0,{cadre},2026-09-05,follow_up,,2026\n", encoding="utf-8")
    capsys.readouterr()

    assert main(["import", str(path), "--kind", "visits", "--interval", "0.1"]) == 3
    out = capsys.readouterr().out
    assert "done — 3 accepted, 0 skipped, 1 rejected of 4 rows" in out, out
    with (tmp_path / "visits.csv.errors.csv").open(encoding="utf-8") as f:
        assert [(r["line"], r["field"]) for r in csv.DictReader(f)] == [("5", "next_visit_due")]
    assert main(["import", str(path), "--kind", "visits", "--interval", "0.1"]) == 3
    assert "done — 0 accepted, 3 skipped, 1 rejected of 4 rows" in capsys.readouterr().out


def test_reevaluate_follows_the_job_to_its_end(urls: System, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(4)
    path = tmp_path / "more.ndjson"
    path.write_text("".join(json.dumps(household(rng, f"rev-{i}")) + "\n" for i in range(15)),
                    encoding="utf-8")
    assert main(["import", str(path), "--interval", "0.1"]) == 0
    capsys.readouterr()

    def classified() -> int | None:
        with httpx.Client(base_url=urls.url("eligibility")) as client:
            r = client.get("/v1/classifications", params={"commune_code": COMMUNE, "limit": 500},
                           headers=auth("national_admin"))
        body = r.json()
        items = body["items"] if isinstance(body, dict) else body
        return len(items) if len(items) >= 15 else None

    eventually_sync(classified, timeout=60, message="eligibility classified the import")

    assert main(["reevaluate", "VN-MDP-2022", "--interval", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "re-evaluation" in out and "of VN-MDP-2022: done" in out
    processed = int(out.split(": done — ")[1].split(" households")[0].replace(",", ""))
    assert processed >= 15

    assert main(["reevaluate", "NO-SUCH-RULESET", "--interval", "0.1"]) == 1
    assert "re-evaluation refused: 404" in capsys.readouterr().err


def test_without_a_token_outside_dev_mode_the_commands_refuse(
        urls: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVERYDOOR_DEV_MODE", "false")
    path = tmp_path / "x.ndjson"
    path.write_text("{}\n", encoding="utf-8")
    assert main(["import", str(path)]) == 1
    assert "no token" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.ndjson")]) == 2
