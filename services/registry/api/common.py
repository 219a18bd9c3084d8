"""Roles and shared parameters of the registry routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response

from services.registry.handlers.common import WRITERS
from shared.auth import require_role

READERS = (*WRITERS, "commune_chair", "supervisor", "auditor")
writer = require_role(*WRITERS)
reader = require_role(*READERS)
IfMatch = Annotated[str | None, Header(description="the household's ETag (its version)")]
# Documented as required; without it the answer is 428 (shared.problems), with a stale one 412.
IfMatchRequired = Annotated[str, Header(description="the household's ETag (its version)")]


def etag(response: Response, version: int) -> None:
    """Expose the version as a strong ETag."""
    response.headers["ETag"] = f'"{version}"'
