"""History is written once: the registry's household versions and surveys refuse UPDATE, DELETE
and TRUNCATE for every database role (a trigger, so the service's own role and a superuser
too); the outbox's events are immutable and only delivered rows can be deleted. Every service's
migrations install the same triggers on its history tables (shared.db.make_append_only)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.registry.conftest import body, officer


async def _refused(registry, statement: str) -> str:
    async with registry.runtime.engine.connect() as conn:
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(sa.text(statement))
        await conn.rollback()
    return str(caught.value.orig)


async def test_history_cannot_be_rewritten_or_erased(registry):
    created = (await registry.client.post("/v1/households", json=body(),
                                          headers=officer())).json()
    hid = created["household_id"]
    where = f"WHERE household_id = '{hid}'"
    for statement in (f"UPDATE household_version SET actor = 'someone else' {where}",
                      f"DELETE FROM household_version {where}",
                      "TRUNCATE household_version CASCADE"):
        assert "append-only" in await _refused(registry, statement), statement
    history = (await registry.client.get(f"/v1/households/{hid}/history",
                                         headers=officer())).json()
    assert len(history) == 1 and history[0]["actor"] != "someone else"


async def test_an_outbox_event_is_immutable_and_kept_until_delivered(registry):
    async with registry.runtime.engine.begin() as conn:  # not delivered (parked: no relay sends it)
        row = (await conn.execute(sa.text(
            "INSERT INTO outbox (event_id, topic, key, type, headers, value, parked_at, "
            "last_error) VALUES (gen_random_uuid(), 'registry.test', 'k', 'test.v1', '{}', "
            "'x', now(), 'a test row') RETURNING id"))).scalar_one()
    assert "only its delivery state" in await _refused(
        registry, f"UPDATE outbox SET value = 'forged' WHERE id = {row}")
    assert "not delivered" in await _refused(registry, f"DELETE FROM outbox WHERE id = {row}")
    async with registry.runtime.engine.begin() as conn:  # the relay's bookkeeping is allowed
        await conn.execute(sa.text(
            f"UPDATE outbox SET attempts = 1, parked_at = NULL, sent_at = now() WHERE id = {row}"))
        gone = await conn.execute(sa.text(f"DELETE FROM outbox WHERE id = {row}"))
        assert gone.rowcount == 1  # delivered: retention may prune it
