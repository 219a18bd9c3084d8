"""The migrated database matches the table definitions (the migration is hand-written)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.registry import tables


async def test_the_migrated_database_matches_the_table_definitions(registry):
    async with registry.runtime.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), tables.meta))
    assert [d for d in diffs if "alembic_version" not in str(d)] == []
