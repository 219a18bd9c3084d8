"""The public complaint form against abuse: security headers on every public page, cross-site
form posts refused (nothing stored), the rate limiter keyed by the hop a trusted proxy added
(not by what the client writes into X-Forwarded-For), and a per-posting limit across clients."""

from __future__ import annotations

import uuid

from services.supervision.handlers.common import service_of
from tests.supervision.conftest import Sup, new_commune
from tests.support.apps import auth
from tests.support.overrides import overridden


async def _posting(sup: Sup) -> tuple[str, dict[str, str]]:
    commune = new_commune()
    officer = auth("commune_officer", commune)
    await sup.commune_list(commune, n=1)
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic"})
    assert r.status_code == 201, r.text
    return r.json()["posting_id"], officer


def _settings(sup: Sup):
    return service_of(sup.service.runtime).settings


async def _stored(sup: Sup, posting_id: str, officer: dict[str, str]) -> int:
    r = await sup.client.get("/v1/complaints", params={"posting_id": posting_id}, headers=officer)
    return len(r.json())


async def test_public_pages_forbid_framing_sniffing_and_foreign_content(sup: Sup):
    posting_id, _ = await _posting(sup)
    for path in (f"/public/postings/{posting_id}", "/public/postings/NY-00000-nothere",
                 "/public/communes/01001"):
        r = await sup.client.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "form-action 'self'" in csp and "script-src" not in csp, path
        assert "style-src 'sha256-" in csp, path  # the page's own inline style, by its hash
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


async def test_a_cross_site_form_post_is_refused_and_stores_nothing(sup: Sup):
    posting_id, officer = await _posting(sup)
    url = f"/public/postings/{posting_id}/complaints"
    form = {"category": "other", "text": "Góp ý về danh sách"}
    async with sup.client_from(f"10.31.{uuid.uuid4().int % 250}.1") as resident:
        r = await resident.post(url, data=form, headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["code"] == "cross_site"
        r = await resident.post(url, data=form, headers={"referer": "https://evil.example/x",
                                                         "accept": "text/html"})
        assert r.status_code == 403 and "trang niêm yết" in r.text
        r = await resident.post(url, data=form, headers={"origin": "null"})
        assert r.status_code == 403
        assert await _stored(sup, posting_id, officer) == 0
        r = await resident.post(url, data=form, headers={"origin": "http://test"})  # our page
        assert r.status_code == 201, r.text
        with overridden(_settings(sup), public_origins=["https://xa-ban-lien.gov.vn"]):
            r = await resident.post(url, data=form,
                                    headers={"origin": "https://xa-ban-lien.gov.vn"})
            assert r.status_code == 201, r.text
    assert await _stored(sup, posting_id, officer) == 2


async def test_the_rate_limit_follows_the_proxy_not_what_the_client_claims(sup: Sup):
    posting_id, _ = await _posting(sup)
    url = f"/public/postings/{posting_id}/complaints"
    proxy = f"10.32.{uuid.uuid4().int % 250}.1"
    with overridden(_settings(sup), trusted_proxies=1):
        async with sup.client_from(proxy) as via_proxy:
            for n in range(5):  # the client varies the left-most hop; the proxy adds the real one
                r = await via_proxy.post(url, data={"category": "other", "text": f"Lần {n}"},
                                         headers={"x-forwarded-for": f"1.2.3.{n}, 203.0.113.9"})
                assert r.status_code == 201, r.text
            r = await via_proxy.post(url, data={"category": "other", "text": "Lần 6"},
                                     headers={"x-forwarded-for": "9.9.9.9, 203.0.113.9"})
            assert r.status_code == 429
            r = await via_proxy.post(url, data={"category": "other", "text": "Người khác"},
                                     headers={"x-forwarded-for": "203.0.113.10"})
            assert r.status_code == 201  # another client behind the same proxy


async def test_a_posting_takes_a_bounded_number_of_complaints_from_all_clients(sup: Sup):
    posting_id, officer = await _posting(sup)
    url = f"/public/postings/{posting_id}/complaints"
    with overridden(_settings(sup), complaint_posting_rate_limit=3):
        for n in range(4):
            async with sup.client_from(f"10.33.{uuid.uuid4().int % 250}.{n + 1}") as resident:
                r = await resident.post(url, data={"category": "other", "text": f"Hộ số {n}"})
                assert r.status_code == (201 if n < 3 else 429), (n, r.text)
    assert await _stored(sup, posting_id, officer) == 3
