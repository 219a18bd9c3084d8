"""Import jobs: spool the upload, run it batch by batch in the background, progress, errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from opentelemetry import trace
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import schemas, tables
from services.registry.domain import imports as lines
from services.registry.handlers.common import sees_personal_data
from services.registry.handlers.imports import visits
from services.registry.handlers.imports.batch import apply_batch, read_lines
from shared import privacy
from shared.auth import Principal
from shared.outbox import CORRELATION_ID
from shared.problems import Problem
from shared.runtime import Runtime
from shared.sanitize import SafeCsvWriter
from shared.settings import state_dir

log = logging.getLogger("everydoor.registry.imports")
tracer = trace.get_tracer("everydoor.registry.imports")
J, E = tables.import_job, tables.import_error
FORMATS = {"ndjson": "ndjson", "jsonl": "ndjson", "x-ndjson": "ndjson", "csv": "csv"}
CONTENT_TYPES = {"application/x-ndjson": "ndjson", "application/ndjson": "ndjson",
                 "application/jsonl": "ndjson", "application/json-lines": "ndjson",
                 "text/csv": "csv", "application/csv": "csv"}


def imports_dir() -> Path:
    """Where uploads are spooled until their job has run."""
    path = state_dir() / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_of(*, fmt: str | None, content_type: str | None, filename: str | None) -> str:
    """ndjson or csv, from `format`, the Content-Type or the file name (422 otherwise)."""
    if fmt:
        if fmt.lower() in FORMATS:
            return FORMATS[fmt.lower()]
        raise Problem(422, f"format: {fmt!r} is not ndjson or csv",
                      errors=[{"field": "format", "message": "ndjson or csv"}])
    media = (content_type or "").split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    suffix = (filename or "").rsplit(".", 1)[-1].lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise Problem(422, "format: send Content-Type application/x-ndjson or text/csv, "
                       "or ?format=ndjson|csv",
                  errors=[{"field": "format", "message": "unknown upload format"}])


def job_read(row: Any) -> schemas.ImportJobRead:
    """A job row as the API returns it."""
    return schemas.ImportJobRead(
        import_id=str(row["id"]), kind=row["kind"], status=row["status"], format=row["format"],
        filename=row["filename"], total=row["total"], accepted=row["accepted"],
        skipped=row["skipped"], rejected=row["rejected"], bytes=row["bytes"],
        message=row["message"], created_by=row["created_by"], created_at=row["created_at"],
        finished_at=row["finished_at"], errors_url=f"/v1/imports/{row['id']}/errors")


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, f"body: the upload is larger than {max_bytes:,} bytes; split the file",
                   errors=[{"field": "body", "message": f"larger than {max_bytes} bytes"}])


async def _refuse_if_busy(session: AsyncSession, user: Principal, limit: int) -> None:
    """429 while the user already has `limit` imports running (each holds a worker and a
    spooled file)."""
    running = await session.scalar(sa.select(sa.func.count()).select_from(J).where(
        J.c.created_by == user.sub, J.c.status == "running"))
    if (running or 0) >= limit:
        raise Problem(429, f"{running} of your imports are still running (at most {limit} at "
                      "once); wait for one to finish", headers={"Retry-After": "30"})


async def start(rt: Runtime, *, body: AsyncIterator[bytes], fmt: str, filename: str | None,
                user: Principal, declared: int | None = None,
                kind: str = "households") -> schemas.ImportJobRead:
    """Spool the upload (constant memory, at most `import_max_bytes`), create the job and run it
    in the background; 413 for a larger upload, 429 while the user has too many running."""
    settings = rt.settings
    max_bytes = int(getattr(settings, "import_max_bytes", 512 * 1024 * 1024))
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    async with rt.sessions() as session:
        await _refuse_if_busy(session, user, int(getattr(settings, "import_max_running_per_user", 2)))
    job_id = str(uuid.uuid4())
    path = imports_dir() / f"{job_id}.{fmt}"
    size = 0
    try:
        with path.open("wb") as fh:
            async for chunk in body:
                size += len(chunk)
                if size > max_bytes:  # a body sent without (or lying about) its length
                    raise _too_large(max_bytes)
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise Problem(422, "body: the upload is empty", errors=[{"field": "body",
                                                                 "message": "empty"}])
    async with rt.transaction() as session:
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(
            sa.func.hashtext("imports:" + user.sub))))
        try:
            await _refuse_if_busy(session, user,
                                  int(getattr(settings, "import_max_running_per_user", 2)))
        except Problem:
            path.unlink(missing_ok=True)
            raise
        row = (await session.execute(sa.insert(J).values(
            id=job_id, format=fmt, kind=kind, status="running", filename=filename, bytes=size,
            created_by=user.sub, created_role=user.role, created_scope=list(user.scope),
        ).returning(*J.c))).mappings().one()
    task = asyncio.create_task(run(rt, job_id=job_id, path=path, fmt=fmt, user=user, kind=kind),
                               name=f"registry-import-{job_id}")
    rt.tasks.append(task)
    def forget(done: asyncio.Task) -> None:
        if done in rt.tasks:
            rt.tasks.remove(done)

    task.add_done_callback(forget)
    return job_read(row)


async def fail_interrupted(session: AsyncSession, *, stale_after_s: int = 300) -> int:
    """At start-up: jobs without progress for a while were left by a stopped process; they fail
    (uploading the file again is safe: imported lines are skipped)."""
    stale = sa.func.now() - sa.text(f"interval '{int(stale_after_s)} seconds'")
    result = await session.execute(sa.update(J).where(
        J.c.status == "running", J.c.heartbeat_at < stale).values(
        status="failed", finished_at=sa.func.now(),
        message="interrupted by a restart; upload the file again (lines already imported are "
                "skipped)"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def visible(row: Any, user: Principal) -> bool:
    """A job is visible to its creator and to national readers."""
    return row is not None and (user.national or row["created_by"] == user.sub)


async def get(session: AsyncSession, *, job_id: str, user: Principal) -> schemas.ImportJobRead:
    """A job and its progress (404 when unknown or not yours)."""
    row = None
    with contextlib.suppress(ValueError):
        uuid.UUID(job_id)
        row = (await session.execute(sa.select(J).where(J.c.id == job_id))).mappings().first()
    if not visible(row, user):
        raise Problem(404, f"no import {job_id}")
    read = job_read(row)
    if not sees_personal_data(user):  # a failure may quote a row (an ID, a birth date)
        read.message = privacy.redact_text(read.message)
    return read


async def error_csv(rt: Runtime, *, job_id: str, user: Principal) -> AsyncIterator[str]:
    """The job's per-line errors as CSV, streamed from the database (for readers with dates cut
    to the year and long numbers masked: a message may quote a birth date; cells a spreadsheet
    would run as formulas are neutralised: they echo the uploaded file)."""
    import io

    buf = io.StringIO()
    writer = SafeCsvWriter(buf)
    writer.writerow(["line", "external_ref", "field", "message"])
    yield buf.getvalue()
    async with rt.sessions() as session:
        result = await session.stream(sa.select(E.c.line, E.c.external_ref, E.c.field,
                                                E.c.message)
                                      .where(E.c.job_id == job_id).order_by(E.c.line, E.c.id))
        full = sees_personal_data(user)
        async for part in result.partitions(1000):
            buf.seek(0)
            buf.truncate()
            writer.writerows(part if full else [
                (line, ref, field, privacy.redact_text(message))
                for line, ref, field, message in part])
            yield buf.getvalue()


async def run(rt: Runtime, *, job_id: str, path: Path, fmt: str, user: Principal,
              kind: str = "households") -> None:
    """Process the spooled file batch by batch, updating the job's progress as it goes."""
    CORRELATION_ID.set(job_id)
    batch_size = int(getattr(rt.settings, "import_batch_size", 500))
    with tracer.start_as_current_span("registry import", context=trace.set_span_in_context(
            trace.INVALID_SPAN), attributes={"everydoor.import_id": job_id}):
        try:
            known: dict[str, tuple[str, str]] = {}
            if kind == "households":
                async with rt.sessions() as session:
                    known = await _communes(session)
            with path.open(encoding="utf-8", errors="replace", newline="") as fh:
                batch: list[lines.RawLine] = []
                for raw in read_lines(fh, fmt, kind=kind, max_line=int(getattr(
                        rt.settings, "import_max_line_chars", 256 * 1024))):
                    batch.append(raw)
                    if len(batch) >= batch_size:
                        await run_batch(rt, job_id=job_id, batch=batch, user=user,
                                        communes=known, kind=kind)
                        batch = []
                if batch:
                    await run_batch(rt, job_id=job_id, batch=batch, user=user, communes=known,
                                    kind=kind)
            async with rt.transaction() as session:
                await session.execute(sa.update(J).where(J.c.id == job_id).values(
                    status="done", finished_at=sa.func.now()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("import %s failed", job_id)
            async with rt.transaction() as session:
                await session.execute(sa.update(J).where(J.c.id == job_id).values(
                    status="failed", finished_at=sa.func.now(), message=f"failed: {exc!r}"[:2000]))
        finally:
            await asyncio.to_thread(path.unlink, True)


async def _communes(session: AsyncSession) -> dict[str, tuple[str, str]]:
    a = tables.admin_unit
    rows = await session.execute(sa.select(a.c.code, a.c.parent_code, a.c.area_type)
                                 .where(a.c.level == "commune"))
    return {r.code: (r.parent_code, r.area_type) for r in rows}


async def run_batch(rt: Runtime, *, job_id: str, batch: list[lines.RawLine], user: Principal,
                    communes: dict[str, tuple[str, str]], kind: str = "households") -> None:
    """One transaction per batch; if a concurrent writer beat us to a unique key, redo the batch
    line by line so that only the conflicting line is rejected."""
    with tracer.start_as_current_span("registry import batch",
                                      attributes={"everydoor.lines": len(batch)}):
        try:
            async with rt.transaction() as session:
                if kind == "visits":
                    await visits.apply_batch(session, rt, job_id=job_id, batch=batch, user=user)
                else:
                    await apply_batch(session, rt, job_id=job_id, batch=batch, user=user,
                                      communes=communes)
        except IntegrityError:
            if len(batch) == 1:
                raise
            for raw in batch:
                await run_batch(rt, job_id=job_id, batch=[raw], user=user, communes=communes,
                                kind=kind)


