"""Bulk import routes: upload (NDJSON or CSV), progress, per-line errors."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.registry import schemas
from services.registry.api.common import reader, writer
from services.registry.domain.imports import CSV_LAYOUT, VISIT_CSV_LAYOUT
from services.registry.handlers import imports
from shared.auth import CurrentUser
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1/imports", tags=["imports"])

DESCRIPTION = f"""Upload households with an inline survey (`kind=households`, the default) or
cadres' door-to-door visits (`kind=visits`); answers 202 with a job at once and
imports in the background (the upload is spooled to disk and read line by line: memory stays
constant whatever the file size; the API's body-size limit does not apply here, the import's
does: `REGISTRY_IMPORT_MAX_BYTES`, 512 MiB → 413). A line longer than
`REGISTRY_IMPORT_MAX_LINE_CHARS` (256 Ki characters) is rejected with its number, never read;
a user may have `REGISTRY_IMPORT_MAX_RUNNING_PER_USER` (2) imports running at once → 429.

**NDJSON** (`Content-Type: application/x-ndjson`): each line is the `POST /v1/households` body
plus a required `external_ref` and an optional `survey` object (the `POST …/surveys` body).

{CSV_LAYOUT}
`external_ref` is the idempotency key: uploading the same file again creates no duplicates
(unchanged lines are counted as `skipped`; a line with a new survey records that survey; a line
whose household data differ from the registered household is rejected — change it with PATCH).
Malformed lines are rejected one by one (`GET /v1/imports/{{id}}/errors`: CSV of line, field,
message) while good lines go in. Lines are written in batches (multi-row inserts, batched outbox).

**Visits** (`kind=visits`): each NDJSON line is the `POST /v1/households/{{id}}/visits` body
(`cadre_id`, `visited_on`, `outcome`, `note`, `next_visit_due`, `review_round`) plus the
household — `household_id`, or `household_external_ref` (the household's own `external_ref`),
exactly one — and a required `external_ref` of the visit line. A line is rejected for the same
reasons the single request is refused: the household archived, `visited_on` in the future, a
`follow_up` without `next_visit_due`, a cadre not of the household's commune, a household or
cadre unknown or outside your scope. Each accepted line publishes
`registry.household.visited.v1` (with `import_id`) through the outbox. `external_ref` is the
idempotency key: uploading the same file again records no visit twice (`skipped`); the same
`external_ref` with other data is rejected (a visit is never changed).

{VISIT_CSV_LAYOUT}"""

BODY = {"requestBody": {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string", "format": "binary"}},
}}}


@router.post("", status_code=202, response_model=schemas.ImportJobRead, dependencies=[writer],
             description=DESCRIPTION, openapi_extra=BODY,
             responses=problem_responses(
                 413, 429, s413="larger than REGISTRY_IMPORT_MAX_BYTES (nothing kept)",
                 s429="the caller already has REGISTRY_IMPORT_MAX_RUNNING_PER_USER imports "
                      "running (Retry-After)"))
async def upload(request: Request, rt: RuntimeDep, user: CurrentUser, response: Response,
                 format: Annotated[Literal["ndjson", "csv"] | None,
                                   Query(description="overrides the Content-Type")] = None,
                 filename: Annotated[str | None, Query(max_length=255)] = None,
                 kind: Annotated[Literal["households", "visits"],
                                 Query(description="what each line is")] = "households",
                 ) -> schemas.ImportJobRead:
    """Start a bulk import of households or visits (NDJSON or CSV)."""
    fmt = imports.format_of(fmt=format, content_type=request.headers.get("content-type"),
                            filename=filename)
    length = request.headers.get("content-length")
    job = await imports.start(rt, body=request.stream(), fmt=fmt, filename=filename, user=user,
                              kind=kind,
                              declared=int(length) if length and length.isdigit() else None)
    response.headers["Location"] = f"/v1/imports/{job.import_id}"
    return job


@router.get("/{import_id}", response_model=schemas.ImportJobRead, dependencies=[reader])
async def progress(import_id: str, rt: RuntimeDep, user: CurrentUser) -> schemas.ImportJobRead:
    """A job's progress: running/done, total, accepted, skipped, rejected."""
    async with rt.snapshot() as session:
        return await imports.get(session, job_id=import_id, user=user)


@router.get("/{import_id}/errors", dependencies=[reader], response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def errors(import_id: str, rt: RuntimeDep, user: CurrentUser) -> StreamingResponse:
    """The per-line error list as CSV: line, external_ref, field, message (for commune chairs,
    supervisors and auditors with dates cut to the year and long numbers masked)."""
    async with rt.snapshot() as session:
        await imports.get(session, job_id=import_id, user=user)
    return StreamingResponse(
        imports.error_csv(rt, job_id=import_id, user=user), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'})
