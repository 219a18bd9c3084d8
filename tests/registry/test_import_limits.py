"""Uploads are bounded: a file past REGISTRY_IMPORT_MAX_BYTES is refused with 413 and nothing
is kept, a line past REGISTRY_IMPORT_MAX_LINE_CHARS is rejected with its number (never read
into memory) while the other lines go in, and a user with too many imports running gets 429."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from services.registry import tables
from tests.registry.conftest import officer
from tests.registry.test_imports import NDJSON, error_rows, line, run_import
from tests.support.apps import auth
from tests.support.overrides import overridden


async def _jobs_of(registry, sub: str) -> int:
    async with registry.runtime.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(
            tables.import_job).where(tables.import_job.c.created_by == sub)) or 0)


async def test_an_upload_past_the_limit_is_refused_and_nothing_is_kept(registry):
    sub = f"officer-{uuid.uuid4().hex[:6]}"
    who = auth("commune_officer", "01001", sub=sub)
    body = "\n".join(json.dumps(line(f"BIG-{i}", village="Thôn Một")) for i in range(20))
    with overridden(registry.runtime.settings, import_max_bytes=2000):
        r = await registry.client.post("/v1/imports", content=body.encode(),
                                       headers={**who, **NDJSON})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"

        async def chunks():  # no Content-Length: counted while it streams
            yield body.encode()

        r = await registry.client.post("/v1/imports", content=chunks(),
                                       headers={**who, **NDJSON})
        assert r.status_code == 413, r.text
    assert await _jobs_of(registry, sub) == 0


async def test_a_line_past_the_limit_is_rejected_by_number_and_the_rest_goes_in(registry):
    ref = uuid.uuid4().hex[:8]
    good = [json.dumps(line(f"L-{ref}-{i}", village="Thôn Hai")) for i in range(2)]
    huge = json.dumps(line(f"L-{ref}-huge", village="Thôn Hai", notes="x" * 5000))
    content = "\n".join([good[0], huge, good[1]]).encode()
    with overridden(registry.runtime.settings, import_max_line_chars=2048):
        job = await run_import(registry, content, NDJSON)
    assert (job["accepted"], job["rejected"]) == (2, 1), job
    rows = await error_rows(registry, job)
    assert [(r["line"], r["field"]) for r in rows] == [("2", "line")]
    assert "longer than 2048" in rows[0]["message"]


async def test_too_many_running_imports_of_one_user_are_refused(registry):
    sub = f"officer-{uuid.uuid4().hex[:6]}"
    async with registry.runtime.engine.begin() as conn:  # one of theirs still running
        await conn.execute(sa.insert(tables.import_job).values(
            id=str(uuid.uuid4()), format="ndjson", status="running", bytes=1, created_by=sub,
            created_role="commune_officer", created_scope=["01001"]))
    body = json.dumps(line(f"BUSY-{uuid.uuid4().hex[:6]}", village="Thôn Ba")).encode()
    with overridden(registry.runtime.settings, import_max_running_per_user=1):
        r = await registry.client.post("/v1/imports", content=body, headers={
            **auth("commune_officer", "01001", sub=sub), **NDJSON})
        assert r.status_code == 429 and r.headers["retry-after"], r.text
        r = await registry.client.post("/v1/imports", content=body,  # someone else may
                                       headers={**officer(), **NDJSON})
        assert r.status_code == 202, r.text
