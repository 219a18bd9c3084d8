"""Headless Debian Chromium on the officers' dashboard: at phone width and as A4 print, the
charts' totals read from the SVG in the page; screenshots kept as test artefacts."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn

from shared.infra import free_port
from tests.supervision.conftest import Sup
from tests.supervision.test_browser import ARGS, CHROMIUM
from tests.supervision.test_dashboard import seed
from tests.support.apps import auth
from tests.support.wait import eventually

TOTALS = """() => Object.fromEntries([...document.querySelectorAll('svg.chart')].map(
    s => [s.dataset.chart, Number(s.dataset.total)]))"""
WIDEST = """() => Math.max(...[...document.querySelectorAll('svg.chart')].map(
    s => s.getBoundingClientRect().right))"""


@pytest.mark.browser
async def test_the_dashboard_at_phone_width_and_in_print(sup: Sup, artifacts):
    playwright_api = pytest.importorskip("playwright.async_api")
    s = await seed(sup)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sup.service.app, host="127.0.0.1", port=port,
                                           lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}/dashboard?commune_code={s.commune}"
    expected = {"by_category": 3, "by_village": 3, "funnel": 2, "complaints": 3,
                "findings": 2, "loans": 30_000_000}
    try:
        await eventually(lambda: server.started, timeout=10, message="uvicorn started")
        async with playwright_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(
                    viewport={"width": 375, "height": 812},
                    extra_http_headers=auth("commune_officer", s.commune))
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                        else None)
                requested: list[str] = []
                page.on("request", lambda r: requested.append(r.url))
                await page.goto(url)
                await page.wait_for_selector("svg.chart")
                assert await page.evaluate(TOTALS) == expected
                assert await page.evaluate(WIDEST) <= 375  # no chart runs off a phone screen
                assert await page.evaluate("document.documentElement.scrollWidth") <= 375
                assert not [e for e in errors if "Content Security Policy" in e]
                # nothing but the page itself (and the browser's own favicon probe) is loaded
                assert {u.split("?")[0] for u in requested} <= {
                    url.split("?")[0], f"http://127.0.0.1:{port}/favicon.ico"}
                await page.screenshot(path=str(artifacts / "supervision-dashboard-phone.png"),
                                      full_page=True)

                await page.emulate_media(media="print")
                await page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
                assert await page.evaluate(TOTALS) == expected
                assert not await page.is_visible("nav.lang")
                assert await page.evaluate(WIDEST) <= 794  # within the A4 page
                await page.screenshot(path=str(artifacts / "supervision-dashboard-a4.png"),
                                      full_page=True)
                pdf = await page.pdf(format="A4", print_background=True)
                (artifacts / "supervision-dashboard-a4.pdf").write_bytes(pdf)
                assert pdf.startswith(b"%PDF")
            finally:
                await browser.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
