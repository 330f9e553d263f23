"""Conferences and participants in the store (migration 0020), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from rcmlrouter.store.base import Store
from rcmlrouter.store.conference_records import (
    ConferenceQuery,
    ConferenceRecord,
    ParticipantRecord,
)
from rcmlrouter.store.ids import new_sid

AC = "AC" + "1" * 32


def conference(
    name: str = "room", node: str = "node-a", at: float | None = None
) -> ConferenceRecord:
    now = time.time() if at is None else at
    return ConferenceRecord(new_sid("CF"), AC, name, "init", node, now, now)


async def test_a_name_is_held_by_one_active_conference(store: Store) -> None:
    first, second = conference(node="node-a"), conference(node="node-b")
    held = await asyncio.gather(store.claim_conference(first), store.claim_conference(second))
    assert held[0].sid == held[1].sid  # the same room for both, whoever came first
    winner = held[0]
    assert winner.sid in (first.sid, second.sid)
    # once it is over the name is free again: a new conference takes it
    await store.save_conference_rows([replace(winner, status="completed")], [])
    third = conference(node="node-b")
    assert (await store.claim_conference(third)).sid == third.sid
    other_account = replace(conference(), account_sid="AC" + "2" * 32)
    assert (await store.claim_conference(other_account)).sid == other_account.sid


async def test_rows_are_upserted_and_listed_with_filters(store: Store) -> None:
    day = 1_700_000_000.0  # 2023-11-14
    old = conference("alpha", at=day)
    new = conference("beta", at=day + 86400)
    for record in (old, new):
        await store.claim_conference(record)
    await store.save_conference_rows([replace(old, status="completed", reason_ended="x")], [])
    page = await store.list_conferences(ConferenceQuery(AC), 0, 50)
    assert [c.sid for c in page.items] == [new.sid, old.sid] and page.total == 2
    done = await store.list_conferences(ConferenceQuery(AC, status="completed"), 0, 50)
    assert [c.sid for c in done.items] == [old.sid]
    assert done.items[0].reason_ended == "x"
    named = await store.list_conferences(ConferenceQuery(AC, friendly_name="beta"), 0, 50)
    assert [c.sid for c in named.items] == [new.sid]
    that_day = ConferenceQuery(AC, created_from=day - 100, created_before=day + 100)
    assert [c.sid for c in (await store.list_conferences(that_day, 0, 50)).items] == [old.sid]
    assert (await store.get_conference(new.sid)).friendly_name == "beta"


async def test_participants_round_trip(store: Store) -> None:
    room = conference()
    await store.claim_conference(room)
    now = time.time()
    one = ParticipantRecord(
        room.sid, "CA" + "a" * 32, AC, "connected", True, False, True, False, now, now
    )
    two = ParticipantRecord(room.sid, "CA" + "b" * 32, AC, "connected", False, False, False, True,
                            now + 1, now + 1, True, one.call_sid, "coach")  # fmt: skip
    await store.save_conference_rows([], [one, two])
    await store.save_conference_rows([], [replace(one, hold=True, status="completed")])
    page = await store.list_participants(room.sid, None, 0, 50)
    assert [p.call_sid for p in page.items] == [one.call_sid, two.call_sid]
    got = await store.get_participant(room.sid, one.call_sid)
    assert got.hold is True and got.muted is True and got.status == "completed"
    assert await store.get_participant(room.sid, two.call_sid) == two
    connected = await store.list_participants(room.sid, "connected", 0, 50)
    assert [p.call_sid for p in connected.items] == [two.call_sid]
    held = await store.list_participants(room.sid, None, 0, 50, hold=True)
    assert [p.call_sid for p in held.items] == [one.call_sid] and held.total == 1
    unmuted = await store.list_participants(room.sid, None, 0, 50, muted=False, hold=False)
    assert [p.call_sid for p in unmuted.items] == [two.call_sid]
    assert [c.sid for c in await store.active_conferences("node-a")] == [room.sid]
    assert await store.active_conferences("node-b") == []


async def test_a_calls_conferences_are_found_by_its_sid(store: Store) -> None:
    first, second = conference("first", at=1_700_000_000.0), conference("second")
    for room in (first, second):
        await store.claim_conference(room)
    caller, other = "CA" + "c" * 32, "CA" + "d" * 32
    rows = [
        ParticipantRecord(first.sid, caller, AC, "completed", False, False, True, False, 1.0, 2.0),
        ParticipantRecord(second.sid, caller, AC, "connected", True, False, True, False, 3.0, 3.0),
        ParticipantRecord(second.sid, other, AC, "connected", False, False, True, False, 4.0, 4.0),
    ]
    await store.save_conference_rows([], rows)
    found = await store.call_conferences(caller)
    assert [(c.sid, p.status, p.muted) for c, p in found] == [
        (second.sid, "connected", True),
        (first.sid, "completed", False),
    ]
    assert [c.friendly_name for c, _ in await store.call_conferences(other)] == ["second"]
    assert await store.call_conferences("CA" + "e" * 32) == []
