"""PostgreSQL COPY of dict rows on a session's connection (inside its transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import json_text


def _encoder(column: sa.Column) -> Callable[[Any], Any]:
    if isinstance(column.type, JSONB):
        return lambda v: None if v is None else json_text(v)
    if isinstance(column.type, sa.LargeBinary):
        return lambda v: v
    return lambda v: v


async def copy_rows(session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Bulk-load rows with PostgreSQL COPY on the session's connection (same transaction)."""
    if not rows:
        return
    columns = list(rows[0])
    encoders = [_encoder(table.c[c]) for c in columns]
    records = [tuple(enc(r[c]) for enc, c in zip(encoders, columns, strict=True)) for r in rows]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, columns=columns, records=records)

