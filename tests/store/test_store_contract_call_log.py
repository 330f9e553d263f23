"""The call log on both engines: filters, newest-first windows, live calls, a call's extras."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from rcmlrouter.assembly.stores import open_store_url
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import CallQuery, MessageQuery, RecordCursor
from rcmlrouter.store.records import CallRecord, MessageRecord, Notification, OutboxEvent
from support.store_engines import Engine


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[Store]:
    opened = await engine.open()
    yield opened
    await opened.close()


def _call(
    sid: str, start: float, to: str = "+1510", from_: str = "alice", **kw: object
) -> CallRecord:
    base = CallRecord(sid, "AC1", None, from_, to, "inbound", "completed", "exact", start,
                      start, start + 5, 5.0, 200)  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_filters_and_windows_page_newest_first(store: Store) -> None:
    calls = [
        _call(f"CA{i:02d}", float(i // 2), to="+1510" if i % 3 else "+1999") for i in range(12)
    ]
    await store.record_calls([*calls, _call("CAother", 3.0, account_sid="AC2")])
    page = await store.list_calls(CallQuery("AC1", to="+1999"), 0, 2)
    assert page.total == 4 and [c.sid for c in page.items] == ["CA09", "CA06"]
    timed = await store.list_calls(CallQuery("AC1", started_from=2.0, started_before=4.0), 0, 50)
    assert sorted(c.sid for c in timed.items) == ["CA04", "CA05", "CA06", "CA07"]
    assert (await store.list_calls(CallQuery("AC1", from_="bob"), 0, 5)).total == 0
    seen: list[str] = []
    cursor = None
    while window := await store.recent_calls(CallQuery("AC1"), cursor, 5):
        seen += [c.sid for c in window]
        cursor = RecordCursor(window[-1].start_time, window[-1].sid)
    # newest first; equal start times by sid: the same order as the counted pages
    everything = await store.list_calls(CallQuery("AC1"), 0, 50)
    assert seen == [c.sid for c in everything.items] and len(seen) == 12
    assert seen[:2] == ["CA10", "CA11"]


async def test_live_calls_carry_their_node_and_account(store: Store) -> None:
    ringing = _call("CAring", 10.0, status="ringing", answer_time=None, end_time=None)
    talking = _call("CAtalk", 11.0, status="in-progress", end_time=None, account_sid="AC2")
    await store.record_calls([ringing, talking, _call("CAdone", 12.0)])
    live = await store.live_calls(["AC1", "AC2"])
    assert [(c.record.sid, c.record.status) for c in live] == [
        ("CAtalk", "in-progress"),
        ("CAring", "ringing"),
    ]
    assert [c.record.sid for c in await store.live_calls(["AC1"])] == ["CAring"]
    assert await store.live_calls([]) == []


async def test_on_postgresql_a_live_call_names_its_node(engine: Engine) -> None:
    if engine.name != "postgres":
        pytest.skip("SQLite is one node: its calls carry no owner")
    node = await open_store_url(engine.url, node_id="node-a:5071")
    try:
        await node.record_calls([_call("CAnode", 1.0, status="ringing", end_time=None)])
        assert [(c.record.sid, c.node) for c in await node.live_calls(["AC1"])] == [
            ("CAnode", "node-a:5071")
        ]
    finally:
        await node.close()


async def test_a_calls_notifications_and_pending_callbacks(store: Store) -> None:
    notes = [
        Notification(f"NO{i}", "AC1", "CA1" if i < 2 else "CA2", 11200, "error", "m", None, i)
        for i in range(3)
    ]
    await store.add_notifications(notes)
    assert [n.sid for n in await store.call_notifications("CA1", 10)] == ["NO0", "NO1"]
    event = OutboxEvent(None, "CA1", "AC1", 0, "http://h/", "POST", {"a": "b"}, 0, 1.0, 1.0)
    ids = await store.enqueue_callbacks(
        [event, replace(event, sequence=1), replace(event, call_sid="CA2")]
    )
    pending = await store.call_callbacks("CA1")
    assert [(e.id, e.sequence) for e in pending] == [(ids[0], 0), (ids[1], 1)]
    await store.mark_callbacks_delivered([ids[0]])
    assert [e.sequence for e in await store.call_callbacks("CA1")] == [1]
    assert await store.list_nodes() == []


async def test_recent_messages_use_the_api_filters(store: Store) -> None:
    messages = [
        MessageRecord(f"SM{i}", "AC1", None, "alice", "+1510" if i % 2 else "+1999", "hi",
                      "inbound", "received", float(i))
        for i in range(6)
    ]  # fmt: skip
    await store.record_messages(messages)
    found = await store.recent_messages(MessageQuery("AC1", to="+1510"), None, 2)
    assert [m.sid for m in found] == ["SM5", "SM3"]
    older = await store.recent_messages(
        MessageQuery("AC1", to="+1510"), RecordCursor(found[-1].date_created, found[-1].sid), 5
    )
    assert [m.sid for m in older] == ["SM1"]


async def test_search_floors_count_back_from_a_position(store: Store) -> None:
    await store.record_calls([_call(f"CA{i:02d}", float(i)) for i in range(10)])
    query = CallQuery("AC1", to="ignored")
    assert await store.call_search_floor(query, None, 3) == 6.0
    assert await store.call_search_floor(query, RecordCursor(6.0, "CA06"), 3) == 2.0
    assert await store.call_search_floor(CallQuery("AC1", started_before=5.0), None, 0) == 4.0
    assert await store.call_search_floor(query, None, 10) is None
    messages = [
        MessageRecord(f"SM{i}", "AC1", None, "a", "b", "hi", "inbound", "received", float(i))
        for i in range(4)
    ]
    await store.record_messages(messages)
    assert await store.message_search_floor(MessageQuery("AC1", to="b"), None, 1) == 2.0
