"""Role sets and query types shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from shared.auth import require_role

READERS = ("national_admin", "province_officer", "commune_officer", "commune_chair", "supervisor",
           "auditor")
OFFICERS = ("national_admin", "province_officer", "commune_officer")
HANDLERS = ("national_admin", "province_officer", "commune_officer", "commune_chair")
read_role = require_role(*READERS)
CommuneQ = Annotated[str | None, Query(pattern=r"^\d{5}$")]
