"""The OpenAPI document describes the import formats (integrators read it)."""

from __future__ import annotations


async def test_openapi_documents_the_import_layouts_and_every_route(registry):
    r = await registry.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    upload = doc["paths"]["/v1/imports"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/x-ndjson", "text/csv"}
    assert "dep_<code>" in upload["description"] and "external_ref" in upload["description"]
    for path in ("/v1/households", "/v1/households/{household_id}",
                 "/v1/households/{household_id}/history", "/v1/households/{household_id}/members",
                 "/v1/households/{household_id}/members/{member_id}",
                 "/v1/households/{household_id}/surveys", "/v1/households/{household_id}/archive",
                 "/v1/imports/{import_id}", "/v1/imports/{import_id}/errors", "/v1/admin-units",
                 "/v1/households/{household_id}/visits", "/v1/cadres", "/v1/cadres/{cadre_id}",
                 "/v1/assignments", "/v1/assignments/{assignment_id}/end", "/v1/coverage"):
        assert path in doc["paths"], path
