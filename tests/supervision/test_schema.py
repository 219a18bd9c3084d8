"""The migrated database matches the table definitions (the migration is hand-kept)."""

from __future__ import annotations

from tests.supervision.conftest import Sup


async def test_the_migrated_database_matches_the_table_definitions(sup: Sup):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.supervision import tables

    async with sup.service.runtime.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), tables.meta))
    assert [d for d in diffs if "alembic_version" not in str(d)] == []
