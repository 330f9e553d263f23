"""The Store contract for records: the callback outbox, the journal write (a record and the events
it owes commit together or not at all) and messages; on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rcmlrouter.errors import NotFoundError, StoreError
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import MessageQuery
from rcmlrouter.store.records import CallRecord, MessageRecord, OutboxEvent
from support.store_engines import Engine


def _call(sid: str = "CA1", **changes: object) -> CallRecord:
    call = CallRecord(
        sid, "AC1", "PN1", "alice", "1234", "inbound", "ringing", "exact", 1.0, None, None,
        None, 180, next_sequence=1, status_callback="http://cb/", status_callback_method="GET",
    )  # fmt: skip
    return replace(call, **changes)  # type: ignore[arg-type]


def _event(sid: str, sequence: int) -> OutboxEvent:
    return OutboxEvent(
        None, sid, "AC1", sequence, "http://cb.example/", "POST", {"SequenceNumber": str(sequence)},
        next_attempt_at=0.0, created_at=1.0,
    )  # fmt: skip


def _message(sid: str, created: float, **changes: object) -> MessageRecord:
    message = MessageRecord(
        sid, "AC1", "PN1", "+15105550001", "1234", "hello", "inbound", "received", created,
        sip_headers={"X-Tag": "a"}, dedupe_key=f"call-{sid} 1 MESSAGE",
    )  # fmt: skip
    return replace(message, **changes)  # type: ignore[arg-type]


# ---- outbox -----------------------------------------------------------------------------------


async def test_outbox_assigns_ids_in_order_and_pages_pending(store: Store) -> None:
    first = await store.enqueue_callbacks([_event("CA1", 0), _event("CA1", 1), _event("CA2", 0)])
    second = await store.enqueue_callbacks([_event("CA1", 2), _event("CA3", 0)])
    assert first == sorted(first) and second == sorted(second) and first[-1] < second[0]
    assert await store.pending_callback_count() == 5
    page = await store.pending_callbacks(0, 3)
    assert [(e.call_sid, e.sequence) for e in page] == [("CA1", 0), ("CA1", 1), ("CA2", 0)]
    assert [e.id for e in page] == first and page[0].params == {"SequenceNumber": "0"}
    assert page[0] == replace(_event("CA1", 0), id=first[0])
    rest = await store.pending_callbacks(first[-1], 10)
    assert [(e.call_sid, e.sequence) for e in rest] == [("CA1", 2), ("CA3", 0)]
    await store.mark_callbacks_delivered(first[:2])
    await store.mark_callbacks_delivered([])
    remaining = await store.pending_callbacks(0, 10)
    assert [(e.call_sid, e.sequence) for e in remaining] == [("CA2", 0), ("CA1", 2), ("CA3", 0)]
    assert await store.pending_callback_count() == 3
    assert await store.enqueue_callbacks([]) == []


async def test_outbox_survives_reopen(engine: Engine) -> None:
    first = await engine.open()
    await first.enqueue_callbacks(
        [OutboxEvent(None, "CA", "AC", 0, "http://x/", "GET", {"a": "b"})]
    )
    await first.close()
    second = await engine.open()
    try:
        assert [e.params for e in await second.pending_callbacks(0, 5)] == [{"a": "b"}]
        later = await second.enqueue_callbacks([_event("CA", 1)])
        assert later[0] > (await second.pending_callbacks(0, 1))[0].id  # type: ignore[operator]
    finally:
        await second.close()


# ---- journal ----------------------------------------------------------------------------------


async def test_record_and_events_are_written_together(store: Store) -> None:
    ids = await store.write_journal([_call()], [], [_event("CA1", 0)])
    assert len(ids) == 1 and ids[0] > 0
    stored = await store.get_call("CA1")
    assert (stored.next_sequence, stored.status_callback, stored.status_callback_method) == (
        1,
        "http://cb/",
        "GET",
    )
    pending = await store.pending_callbacks(0, 10)
    assert [(e.call_sid, e.sequence) for e in pending] == [("CA1", 0)]
    assert [c.sid for c in await store.unfinished_calls()] == ["CA1"]


async def test_a_failed_write_keeps_neither_record_nor_events(store: Store) -> None:
    broken = _call("CA2", account_sid=None)  # NOT NULL violation inside the transaction
    with pytest.raises(StoreError):
        await store.write_journal([_call("CA1"), broken], [], [_event("CA1", 0)])
    assert await store.pending_callback_count() == 0
    assert await store.unfinished_calls() == []


async def test_the_last_write_of_a_call_in_one_batch_wins(store: Store) -> None:
    final = _call(status="completed", end_time=9.0, duration=3.0, next_sequence=3)
    ids = await store.write_journal(
        [_call(), _call(status="in-progress", answer_time=2.0, next_sequence=2), final],
        [_message("SM1", 1.0), _message("SM1", 1.0, status="processed")],
        [_event("CA1", 0), _event("CA1", 1), _event("CA1", 2)],
    )
    assert ids == sorted(ids) and len(set(ids)) == 3
    stored = await store.get_call("CA1")
    assert stored.status == "completed" and stored.next_sequence == 3
    assert await store.unfinished_calls() == []
    pending = await store.pending_callbacks(0, 10)
    assert [e.sequence for e in pending] == [0, 1, 2] and [e.id for e in pending] == ids
    assert (await store.get_message("SM1")).status == "processed"


async def test_a_dialed_leg_keeps_its_parent(store: Store) -> None:
    child = _call("CA2", direction="outbound-dial", parent_call_sid="CA1", number_sid=None)
    await store.write_journal([_call(), child], [], [])
    assert (await store.get_call("CA2")).parent_call_sid == "CA1"
    assert (await store.get_call("CA1")).parent_call_sid is None


# ---- messages ---------------------------------------------------------------------------------


async def test_messages_round_trip_and_list_newest_first(store: Store) -> None:
    messages = [
        _message("SM1", 10.0),
        _message("SM2", 20.0, to="5678", status="accepted"),
        _message("SM3", 30.0, from_="+15105550009", direction="outbound-api", dedupe_key=None),
        _message("SM4", 15.0, account_sid="AC2", status="accepted"),
    ]
    await store.record_messages(messages)
    await store.record_messages([])
    assert await store.get_message("SM2") == messages[1]
    with pytest.raises(NotFoundError):
        await store.get_message("SM9")

    async def listed(page: int = 0, size: int = 10, **filters: object) -> tuple[list[str], int]:
        query = MessageQuery(**{"account_sid": "AC1", **filters})  # type: ignore[arg-type]
        found = await store.list_messages(query, page, size)
        return [m.sid for m in found.items], found.total

    assert await listed() == (["SM3", "SM2", "SM1"], 3)
    assert await listed(page=1, size=2) == (["SM1"], 3)
    assert await listed(to="5678") == (["SM2"], 1)
    assert await listed(from_="+15105550009") == (["SM3"], 1)
    assert await listed(sent_from=20.0, sent_before=30.0) == (["SM2"], 1)
    assert [m.sid for m in await store.accepted_messages()] == ["SM4", "SM2"]
    keys = sorted(await store.recent_message_keys(15.0))
    assert keys == [("call-SM2 1 MESSAGE", "SM2"), ("call-SM4 1 MESSAGE", "SM4")]
    await store.record_messages([replace(messages[1], status="received", body="again")])
    assert (await store.get_message("SM2")).body == "again"
    assert [m.sid for m in await store.accepted_messages()] == ["SM4"]
