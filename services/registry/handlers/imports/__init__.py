"""Bulk import: spool the upload to disk, then register households in batches (multi-row inserts
and outbox writes), line-by-line errors, idempotent by `external_ref`, progress on the job."""

from services.registry.handlers.imports.batch import apply_batch, validate
from services.registry.handlers.imports.jobs import (
    error_csv,
    fail_interrupted,
    format_of,
    get,
    run,
    start,
)

__all__ = ["apply_batch", "error_csv", "fail_interrupted", "format_of", "get", "run", "start",
           "validate"]
