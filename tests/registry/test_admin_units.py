"""Administrative units: the shipped demo set, listing, loading a CSV (endpoint and CLI)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from tests.registry.conftest import admin, body, officer
from tests.support.apps import auth

PROJECT = Path(__file__).resolve().parents[2]


async def test_the_demo_set_lists_provinces_and_communes(registry):
    provinces = (await registry.client.get("/v1/admin-units", headers=officer(),
                                           params={"level": "province"})).json()
    names = {p["code"]: p["name"] for p in provinces}
    assert names["01"] == "Thành phố Hà Nội" and "08" in names
    communes = (await registry.client.get("/v1/admin-units", headers=officer(),
                                          params={"level": "commune", "parent": "08"})).json()
    assert {c["parent_code"] for c in communes} == {"08"}
    assert next(c for c in communes if c["code"] == "08001")["area_type"] == "rural"
    hanoi = (await registry.client.get("/v1/admin-units", headers=officer(),
                                       params={"level": "commune", "parent": "01"})).json()
    assert "01001" in {c["code"] for c in hanoi}


async def test_national_admins_load_a_csv_all_or_nothing(registry):
    good = ("code,level,name,parent_code,area_type\n"
            "33,province,Tỉnh Hưng Yên,,\n"
            "33001,commune,Xã Tiên Lữ,33,rural\n"
            "01001,commune,Phường Hoàn Kiếm,01,urban\n")
    csv = {"Content-Type": "text/csv"}
    forbidden = await registry.client.post("/v1/admin-units", content=good.encode(),
                                           headers={**officer(), **csv})
    assert forbidden.status_code == 403
    r = await registry.client.post("/v1/admin-units", content=good.encode(),
                                   headers={**admin(), **csv})
    assert r.status_code == 200, r.text
    assert r.json() == {"provinces": 1, "communes": 2, "inserted": 2, "updated": 1}
    created = await registry.client.post("/v1/households", headers=auth("commune_officer", "33001"),
                                         json=body(commune="33001", province="33"))
    assert created.status_code == 201, created.text

    broken = ("code,level,name,parent_code,area_type\n"
              "34001,commune,Xã Mới,34,rural\n"
              "1,province,Tỉnh Sai,,\n"
              "33002,commune,Xã Thiếu,33,suburban\n")
    r = await registry.client.post("/v1/admin-units", content=broken.encode(),
                                   headers={**admin(), **csv})
    assert r.status_code == 422
    lines = {(e["line"], e["field"]) for e in r.json()["errors"]}
    assert {(3, "code"), (4, "area_type"), (0, "parent_code")} <= lines
    units = (await registry.client.get("/v1/admin-units", headers=officer(),
                                       params={"parent": "33"})).json()
    assert [u["code"] for u in units] == ["33001"]  # nothing of the broken file


async def test_the_cli_loads_the_official_list(registry):
    path = Path(tempfile.mkdtemp(prefix="units-")) / "official.csv"
    path.write_text("code,level,name,parent_code,area_type\n"
                    "37,province,Tỉnh Ninh Bình,,\n37001,commune,Xã Gia Viễn,37,rural\n",
                    encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.registry.admin_units", "load", str(path), cwd=PROJECT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "1 provinces, 1 communes" in out.decode()
    units = (await registry.client.get("/v1/admin-units", headers=admin(),
                                       params={"parent": "37"})).json()
    assert [(u["code"], u["name"]) for u in units] == [("37001", "Xã Gia Viễn")]
