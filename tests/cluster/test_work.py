"""Work claiming on the test PostgreSQL server: what a dead node left goes to one survivor.

Node A writes outbox events, an unfinished call and an accepted message (owner = A, from its
connection's ``rcmlrouter.node_id``); while A's heartbeat is fresh nobody takes them; once it
is older than the lease a survivor claims all of them, in id order, and two survivors claiming
at once split nothing. Each claimed call carries its dead owner's last heartbeat (where the
call is closed). SQLite (one node) hands everything to the start-up, with the previous run's
last liveness stamp.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rcmlrouter.cluster.local import LocalWork
from rcmlrouter.cluster.work import ClusterWork
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.records import CallRecord, MessageRecord, OutboxEvent
from rcmlrouter.store.sqlite import SqliteStore
from support.pg import drop_schema, new_schema_name, psql_value, schema_url

LEASE = 0.6


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema_name()
    yield name
    drop_schema(name)


async def _open(schema: str, node: str) -> PostgresStore:
    return await PostgresStore.open(schema_url(schema), node_id=node)


@pytest.fixture
async def nodes(schema: str) -> AsyncIterator[list[PostgresStore]]:
    stores = [await _open(schema, name) for name in ("node-a", "node-b", "node-c")]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def _leave_work(store: PostgresStore, calls: int = 3) -> tuple[list[int], list[str]]:
    """Events (two per call), unfinished calls and one accepted message, written by ``store``."""
    admin, _ = await store.ensure_default_setup()
    now = time.time()
    records, events = [], []
    for _ in range(calls):
        sid = new_sid("CA")
        records.append(
            CallRecord(sid, admin.sid, None, "alice", "1234", "inbound", "in-progress", "exact",
                       now, now, None, None, None, status_callback="http://127.0.0.1:9/cb",
                       next_sequence=2)
        )  # fmt: skip
        events += [
            OutboxEvent(None, sid, admin.sid, seq, "http://127.0.0.1:9/cb", "POST",
                        {"SequenceNumber": str(seq)}, created_at=now)
            for seq in (0, 1)
        ]  # fmt: skip
    message = MessageRecord(
        new_sid("SM"), admin.sid, None, "bob", "1234", "hi", "inbound", "accepted", now
    )
    ids = await store.write_journal(records, [message], events)
    for status in ("queued", "sending", "sent"):  # POST Messages: the first two are unfinished
        await store.create_message(_api_message(admin.sid, status, now), None, 86400)
    return ids, [r.sid for r in records]


def _api_message(account_sid: str, status: str, now: float) -> MessageRecord:
    return MessageRecord(
        new_sid("SM"), account_sid, None, "+15105555555", "+15551230000", status,
        "outbound-api", status, now,
    )  # fmt: skip


@pytest.mark.postgres
async def test_rows_carry_their_writers_node_id(schema: str, nodes: list[PostgresStore]) -> None:
    _ids, calls = await _leave_work(nodes[0])
    assert psql_value(schema, "SELECT string_agg(DISTINCT owner, ',') FROM callback_outbox") == (
        "node-a"
    )
    assert psql_value(schema, f"SELECT owner FROM calls WHERE sid = '{calls[0]}'") == "node-a"
    assert psql_value(schema, "SELECT string_agg(DISTINCT owner, ',') FROM messages") == "node-a"


@pytest.mark.postgres
async def test_a_dead_nodes_work_goes_to_a_survivor_in_order(
    schema: str, nodes: list[PostgresStore]
) -> None:
    a = ClusterWork(nodes[0], "node-a", lease=LEASE)
    b = ClusterWork(nodes[1], "node-b", lease=LEASE)
    assert not await a.claim_at_start()
    assert not await b.claim_at_start()
    ids, calls = await _leave_work(nodes[0])
    assert not await b.claim()  # A is alive: nothing to take
    await a._heartbeat()  # its last one
    a_beat = float(psql_value(schema, "SELECT heartbeat_at FROM nodes WHERE node_id = 'node-a'"))
    await asyncio.sleep(LEASE + 0.2)  # A stops heartbeating (a kill -9)
    await b._heartbeat()
    claim = await b.claim()
    assert [e.id for e in claim.events] == ids  # every event, in id order (so per call)
    assert sorted(c.sid for c in claim.calls) == sorted(calls)
    assert [m.status for m in claim.messages] == ["accepted"]
    # the API's messages not sent yet; a sent one stays where it is
    assert sorted(m.status for m in claim.outbound) == ["queued", "sending"]
    assert {m.direction for m in claim.outbound} == {"outbound-api"}
    assert claim.dead_nodes == ["node-a"]
    assert psql_value(schema, "SELECT string_agg(DISTINCT owner, ',') FROM callback_outbox") == (
        "node-b"
    )
    assert not await b.claim()  # claimed once
    # every call comes with A's last heartbeat: when it was last known alive
    assert set(claim.last_seen) == set(calls)
    assert set(claim.last_seen.values()) == {a_beat}


@pytest.mark.postgres
async def test_two_survivors_split_nothing(schema: str, nodes: list[PostgresStore]) -> None:
    workers = [
        ClusterWork(store, name, lease=LEASE)
        for store, name in zip(nodes, ("node-a", "node-b", "node-c"), strict=True)
    ]
    for worker in workers:
        await worker.claim_at_start()
    ids, _ = await _leave_work(nodes[0], calls=50)
    await asyncio.sleep(LEASE + 0.2)
    await workers[1]._heartbeat()
    await workers[2]._heartbeat()
    first, second = await asyncio.gather(workers[1].claim(), workers[2].claim())
    assert bool(first) != bool(second)  # one survivor took everything
    taken = first or second
    assert [e.id for e in taken.events] == ids and len(taken.calls) == 50


@pytest.mark.postgres
async def test_a_restarted_node_takes_its_own_work_back(
    schema: str, nodes: list[PostgresStore]
) -> None:
    first_run = ClusterWork(nodes[0], "node-a", lease=LEASE)
    await first_run.claim_at_start()
    ids, _ = await _leave_work(nodes[0])
    last = float(psql_value(schema, "SELECT heartbeat_at FROM nodes WHERE node_id = 'node-a'"))
    again = ClusterWork(nodes[0], "node-a", lease=LEASE)  # same id, new run, before the lease
    started = time.monotonic()
    claim = await again.claim_at_start()
    assert time.monotonic() - started >= LEASE * 0.5  # waited for the old run's lease
    assert [e.id for e in claim.events] == ids
    # its calls end at the earlier run's last heartbeat (read before the new run overwrote it)
    assert set(claim.last_seen) == {c.sid for c in claim.calls} and len(claim.calls) == 3
    assert set(claim.last_seen.values()) == {last}


@pytest.mark.postgres
async def test_a_graceful_stop_hands_over_at_once(schema: str, nodes: list[PostgresStore]) -> None:
    a = ClusterWork(nodes[0], "node-a", lease=30)
    b = ClusterWork(nodes[1], "node-b", lease=30)
    await a.claim_at_start()
    await b.claim_at_start()
    ids, _ = await _leave_work(nodes[0])
    await a.stop()  # its heartbeat row is gone: no lease to wait for
    assert [e.id for e in (await b.claim()).events] == ids


async def test_sqlite_is_one_node_and_owns_everything(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "one.db")
    try:
        admin, _ = await store.ensure_default_setup()
        now = time.time()
        record = CallRecord(new_sid("CA"), admin.sid, None, "a", "b", "inbound", "ringing",
                            None, now, None, None, None, None)  # fmt: skip
        event = OutboxEvent(None, record.sid, admin.sid, 0, "http://x/", "POST", {})
        await store.write_journal([record], [], [event])
        for i, status in enumerate(("sent", "sending", "queued")):
            await store.create_message(_api_message(admin.sid, status, now + i), None, 86400)
        first = LocalWork(store)
        claim = await first.claim_at_start()
        assert [c.sid for c in claim.calls] == [record.sid] and len(claim.events) == 1
        assert [m.status for m in claim.outbound] == ["sending", "queued"]  # oldest first
        assert claim.last_seen == {}  # no earlier run stamped: the call's checkpoint counts
        first.start(_nothing)
        await asyncio.sleep(first.beat * 2.5)  # stamps, then a kill -9: no last stamp
        stamped = await store.fetchone("SELECT heartbeat_at FROM nodes")
        assert stamped is not None and time.time() - float(stamped[0]) < first.beat * 1.5
        assert first._task is not None
        first._task.cancel()
        await asyncio.sleep(0.3)
        claim = await LocalWork(store).claim_at_start()  # the restart
        assert claim.last_seen == {record.sid: float(stamped[0])}
    finally:
        await store.close()


async def _nothing(claim: object) -> None:
    raise AssertionError("SQLite takes nothing over")
