"""Officers' sign-in for browser pages: a token pasted once opens the dashboard and the lists
it links to (GET only); writes still need the Authorization header; a bad token, a cross-site
post or a foreign `next` get nowhere."""

from __future__ import annotations

import httpx

from services.supervision.api.signin import safe_next
from shared.auth import SESSION_COOKIE, issue_token
from tests.supervision.conftest import Sup, new_commune


def browser(sup: Sup) -> httpx.AsyncClient:
    """A client that keeps cookies, like a browser, without any Authorization header."""
    transport = httpx.ASGITransport(app=sup.service.app, client=("127.0.0.1", 40001))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_token_signed_in_opens_the_dashboard_and_its_lists_but_writes_nothing(sup: Sup):
    commune = new_commune()
    await sup.commune_list(commune, n=2)
    token = issue_token(role="commune_officer", scope=commune, sub="officer-lan")
    async with browser(sup) as b:
        assert (await b.get("/dashboard")).status_code == 401
        form = await b.get("/sign-in", params={"lang": "en"})
        assert form.status_code == 200 and 'name="token"' in form.text
        assert "default-src 'none'" in form.headers["content-security-policy"]

        r = await b.post("/sign-in", data={"token": token, "next": "/dashboard?lang=en"},
                         headers={"Origin": "http://test"})
        assert r.status_code == 303 and r.headers["location"] == "/dashboard?lang=en"
        cookie = r.headers["set-cookie"]
        assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Max-Age=" in cookie and r.headers["cache-control"] == "no-store"

        page = await b.get("/dashboard", params={"lang": "en"})
        assert page.status_code == 200 and 'data-chart="by_category"' in page.text
        assert 'action="/sign-out' in page.text
        assert (await b.get("/v1/complaints", params={"commune_code": commune})).status_code == 200
        # the cookie never authorises a write (no cross-site request can act with it)
        r = await b.post("/v1/complaints", json={"commune_code": commune, "category": "other",
                                                 "text": "thử", "channel": "officer"})
        assert r.status_code == 401

        out = await b.post("/sign-out", headers={"Origin": "http://test"})
        assert out.status_code == 303 and out.headers["location"].startswith("/sign-in")
        assert (await b.get("/dashboard")).status_code == 401


async def test_a_bad_token_a_cross_site_post_and_a_foreign_next_get_nowhere(sup: Sup):
    good = issue_token(role="supervisor", scope="VN", sub="sup-1")
    async with browser(sup) as b:
        r = await b.post("/sign-in", data={"token": good + "x"}, headers={"Origin": "http://test"})
        assert r.status_code == 401 and "set-cookie" not in r.headers
        assert r.headers["content-type"].startswith("text/html")
        r = await b.post("/sign-in", data={"token": ""})
        assert r.status_code == 422 and "set-cookie" not in r.headers
        r = await b.post("/sign-in", data={"token": good},
                         headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "set-cookie" not in r.headers
        r = await b.post("/sign-in", data={"token": good, "next": "https://evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        assert (await b.get("/dashboard")).status_code == 200
    for bad in ("//evil.example", "/\\evil.example", "javascript:alert(1)", "/dashboard\r\nX: y",
                "/admin", None, ""):
        assert safe_next(bad) == "/dashboard"
    assert safe_next("/v1/complaints?commune_code=01001") == "/v1/complaints?commune_code=01001"
