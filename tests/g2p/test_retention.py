"""Gateway retention: finished transactions are forgotten after G2P_GATEWAY_RETENTION_DAYS by the
gateway's periodic task, in its real state file; open, refused and queued ones never are."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from services.g2p_gateway.config import Settings
from services.g2p_gateway.gateway import Gateway
from services.g2p_gateway.state import State
from tests.g2p.test_protocol import PARTNER, instruction, record
from tests.support.wait import eventually

DAY = 86400.0


def gateway(tmp_path: Path, **kw: object) -> Gateway:
    return Gateway(Settings(partner=PARTNER, state_file=tmp_path / "state.json",  # type: ignore[arg-type]
                            batch_size=2, **kw))


def transactions_of(gw: Gateway, n: int) -> list[str]:
    """n instructions in transactions of two; their transaction ids, in instruction order."""
    for i in range(n):
        gw.record(record(instruction(i), offset=i))
    asyncio.run(gw.flush(force=True))
    ids = []
    for ref in sorted(gw.state.instructions):
        txn = gw.state.instructions[ref].transaction_id
        if txn not in ids:
            ids.append(txn)
    return [t for t in ids if t is not None]


def finish(gw: Gateway, txn_id: str, *, status: str, days_ago: float) -> None:
    for ref in gw.state.transactions[txn_id].references:
        inst = gw.state.instructions[ref]
        inst.published = ["accepted", status]
        inst.updated_at = time.time() - days_ago * DAY


def test_finished_transactions_past_retention_are_forgotten_and_nothing_else(tmp_path):
    gw = gateway(tmp_path, retention_days=90)
    settled_old, failed_old, settled_new, half_done, refused = transactions_of(gw, 10)
    finish(gw, settled_old, status="settled", days_ago=91)
    finish(gw, failed_old, status="failed", days_ago=120)
    finish(gw, settled_new, status="settled", days_ago=89)
    # one instruction of this transaction settled long ago, the other still open
    first = gw.state.transactions[half_done].references[0]
    gw.state.instructions[first].published = ["accepted", "settled"]
    gw.state.instructions[first].updated_at = time.time() - 200 * DAY
    # the bank refused this one and never answered: an operator's, whatever its age
    gw.state.transactions[refused].state = "refused"
    for ref in gw.state.transactions[refused].references:
        gw.state.instructions[ref].updated_at = time.time() - 365 * DAY
    gw.record(record(instruction(99), offset=99))  # queued, in no transaction yet
    gw.state.save()

    assert asyncio.run(gw.prune()) == (2, 4)

    kept = State.load(tmp_path / "state.json")  # what a restart sees
    assert set(kept.transactions) == {settled_new, half_done, refused}
    assert len(kept.instructions) == 7
    assert kept.queued() == [instruction(99).instruction_id]
    assert gw.counts["pruned_transactions"] == 2
    assert asyncio.run(gw.prune()) == (0, 0)  # nothing more to do


def test_the_periodic_task_prunes_with_the_configured_retention(tmp_path):
    gw = gateway(tmp_path, retention_days=0.5, prune_interval_s=0.05)
    old, new = transactions_of(gw, 4)
    finish(gw, old, status="rejected", days_ago=1)
    finish(gw, new, status="settled", days_ago=0.25)
    gw.state.save()

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(gw.prune_loop(stop))
        await eventually(lambda: old not in State.load(tmp_path / "state.json").transactions,
                         timeout=10, message="the periodic task pruned the old transaction")
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    assert set(State.load(tmp_path / "state.json").transactions) == {new}


def test_the_retention_setting_defaults_to_ninety_days_and_reads_the_environment(monkeypatch):
    assert Settings(partner=PARTNER).retention_days == 90
    monkeypatch.setenv("G2P_GATEWAY_RETENTION_DAYS", "30")
    assert Settings(partner=PARTNER).retention_days == 30


def test_a_transaction_whose_polls_go_unanswered_is_left_to_an_operator_who_may_retry(tmp_path):
    """After G2P_GATEWAY_MAX_UNANSWERED_POLLS polls without a callback the gateway stops polling
    and lists the transaction; a retry sends its open instructions as a new transaction with a
    new message id and the same reference ids, once."""
    gw = gateway(tmp_path, max_unanswered_polls=2, callback_timeout_s=0.01, poll_interval_s=0.01)
    (txn_id,) = transactions_of(gw, 2)
    txn = gw.state.transactions[txn_id]
    txn.state = "acked"
    posted: list[str] = []

    async def acked_but_silent(path: str, body: bytes, signature: str) -> dict:
        posted.append(path)
        return {"ack_status": "ACK"}

    gw._post = acked_but_silent  # type: ignore[method-assign]

    async def polled_until_given_up() -> bool:
        await gw.poll_due()
        return txn.state == "unanswered"

    asyncio.run(eventually(polled_until_given_up, timeout=10, interval=0.02,
                           message="the transaction marked unanswered"))
    assert posted.count("/disburse/txn/status") == 2
    assert [k for k, _ in gw.transactions(("refused", "unanswered"))] == [txn_id]

    new_id, new = asyncio.run(gw.retry(txn_id))
    assert new.references == txn.references and new.message_id != txn.message_id
    assert new.state == "new" and new.retry_of == txn_id
    assert (txn.state, txn.retried_as) == ("retried", new_id)
    assert all(gw.state.instructions[r].transaction_id == new_id for r in new.references)
    kept = State.load(tmp_path / "state.json")  # the retry survives a restart
    assert kept.transactions[txn_id].state == "retried" and new_id in kept.transactions
    with pytest.raises(ValueError, match="retried"):
        asyncio.run(gw.retry(txn_id))
    with pytest.raises(LookupError):
        asyncio.run(gw.retry("00000000-0000-0000-0000-000000000000"))
