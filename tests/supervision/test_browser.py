"""Headless Debian Chromium on the public posting page: no ID number on it, a complaint sent
through the form reaches the officers' list; a screenshot is kept as a test artefact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn

from shared.infra import free_port
from tests.supervision.conftest import Sup, new_commune
from tests.support.apps import auth
from tests.support.wait import eventually

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.mark.browser
async def test_a_resident_reads_the_list_and_files_a_complaint_in_chromium(sup: Sup, artifacts):
    playwright_api = pytest.importorskip("playwright.async_api")
    commune = new_commune()
    officer = auth("commune_officer", commune)
    households = await sup.commune_list(commune, n=4)
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic",
        "closes_at": (datetime.now(UTC) + timedelta(days=10)).isoformat()})
    assert r.status_code == 201
    posting_id = r.json()["posting_id"]
    target = households[1]
    reference = next(i["reference"] for i in r.json()["items"]
                     if i["household_id"] == target["household_id"])

    # the in-process app on a real local port (same event loop; its lifespan already runs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sup.service.app, host="127.0.0.1", port=port,
                                           lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, timeout=10, message="uvicorn started")
        async with playwright_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 412, "height": 915})  # a phone
                await page.goto(f"http://127.0.0.1:{port}/public/postings/{posting_id}")
                await page.wait_for_selector("form.complaint")
                text = await page.inner_text("body")
                assert "Niêm yết công khai" in text
                for h in households:
                    assert h["head_name"] in text
                    assert h["national_id"] not in await page.content()
                await page.screenshot(path=str(artifacts / "supervision-posting.png"),
                                      full_page=True)

                await page.select_option("#category", "wrong_category")
                await page.select_option("#household", reference)
                await page.fill("#text", "Nhà chị ấy mới xây nhà kiên cố, không thiếu hụt "
                                         "chất lượng nhà ở.")
                await page.fill("#contact", "0977 000 111")
                await page.click("button[type=submit]")
                await page.wait_for_selector("#complaint-id")
                complaint_id = (await page.inner_text("#complaint-id")).strip()
                assert "Đã nhận khiếu nại" in await page.inner_text("body")
                await page.screenshot(path=str(artifacts / "supervision-complaint-received.png"))

                await page.emulate_media(media="print")
                await page.goto(f"http://127.0.0.1:{port}/public/postings/{posting_id}")
                assert not await page.is_visible("form.complaint")  # the notice board copy
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)

    r = await sup.client.get("/v1/complaints", params={"commune_code": commune},
                             headers=officer)
    filed = {c["complaint_id"]: c for c in r.json()}
    assert filed[complaint_id]["household_id"] == target["household_id"]
    assert filed[complaint_id]["category"] == "wrong_category"
    assert filed[complaint_id]["channel"] == "web" and filed[complaint_id]["has_contact"]
    assert (artifacts / "supervision-posting.png").stat().st_size > 10_000
