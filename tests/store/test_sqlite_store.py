"""SqliteStore against real database files."""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from rcmlrouter.errors import ConflictError, NotFoundError
from rcmlrouter.store.base import (
    Account,
    CallRecord,
    IncomingNumber,
    NumberChange,
    OutboxEvent,
    hash_password,
    new_sid,
    verify_password,
)
from rcmlrouter.store.sqlite import SqliteStore
from rcmlrouter.store.sqlite_core import migration_scripts


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


def _number(
    account: Account, phone: str, *, is_sip: bool, org: str | None = None
) -> IncomingNumber:
    now = time.time()
    return IncomingNumber(
        sid=new_sid("PN"),
        account_sid=account.sid,
        organization_sid=org or account.organization_sid,
        phone_number=phone,
        friendly_name=phone,
        is_sip=is_sip,
        number_type="sip" if is_sip else "local",
        beta=False,
        date_created=now,
        date_updated=now,
    )


async def test_file_is_private_and_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite"
    first = await SqliteStore.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    admin, token = await first.ensure_default_setup()
    assert token is not None and len(token) == 32
    await first.close()
    latest = len(migration_scripts())
    assert latest >= 3
    second = await SqliteStore.open(path)
    try:
        assert await second.migrate() == latest  # nothing left to apply
        again, no_token = await second.ensure_default_setup()
        assert again == admin and no_token is None
    finally:
        await second.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (latest,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_uniqueness_is_enforced_by_the_database(store: SqliteStore) -> None:
    admin, _ = await store.ensure_default_setup()
    other_org = await store.add_organization("other.example")
    await store.bulk_insert_numbers([_number(admin, "+15105555555", is_sip=False)])
    with pytest.raises(ConflictError):
        await store.bulk_insert_numbers([_number(admin, "+15105555555", is_sip=False)])
    with pytest.raises(ConflictError):  # provider numbers are unique platform-wide
        await store.bulk_insert_numbers(
            [_number(admin, "+15105555555", is_sip=False, org=other_org.sid)]
        )
    await store.bulk_insert_numbers([_number(admin, "1000", is_sip=True)])
    with pytest.raises(ConflictError):
        await store.bulk_insert_numbers([_number(admin, "1000", is_sip=True)])
    # the same SIP number in another organization is fine
    await store.bulk_insert_numbers([_number(admin, "1000", is_sip=True, org=other_org.sid)])
    rows = [row async for row in store.iter_route_rows()]
    assert sorted(r[2] for r in rows) == ["+15105555555", "1000", "1000"]
    with pytest.raises(ConflictError):
        await store.add_organization("OTHER.example")


async def test_change_listeners_fire_after_commit_only(store: SqliteStore, tmp_path: Path) -> None:
    admin, _ = await store.ensure_default_setup()
    seen: list[tuple[NumberChange, bool]] = []

    def listener(change: NumberChange) -> None:
        with sqlite3.connect(tmp_path / "store.db") as other:  # a second connection
            found = other.execute(
                "SELECT COUNT(*) FROM incoming_phone_numbers WHERE sid = ?", (change.sid,)
            ).fetchone()
        seen.append((change, found == (1,)))

    def broken(change: NumberChange) -> None:
        raise RuntimeError("listener bug")

    store.add_change_listener(broken)
    store.add_change_listener(listener)
    number = _number(admin, "2000", is_sip=True)
    await store.create_number(number, from_inventory=False)
    assert seen[-1][0].action == "upsert" and seen[-1][1] is True
    assert seen[-1][0].number is not None and seen[-1][0].number.phone_number == "2000"
    with pytest.raises(ConflictError):
        await store.create_number(replace(number, sid=new_sid("PN")), from_inventory=False)
    assert len(seen) == 1  # the failed insert was not announced
    await store.update_number(replace(number, voice_url="http://a.example/"))
    assert seen[-1][0].number is not None and seen[-1][0].number.voice_url == "http://a.example/"
    await store.delete_number(number.sid, 0)
    assert seen[-1][0] == NumberChange("delete", number.sid, None) and seen[-1][1] is False
    with pytest.raises(NotFoundError):
        await store.delete_number(number.sid, 0)
    assert len(seen) == 3


async def test_inventory_claim_and_recycle(store: SqliteStore) -> None:
    from rcmlrouter.store.base import InventoryEntry

    admin, _ = await store.ensure_default_setup()
    assert await store.import_inventory([InventoryEntry("+15105555555", "US", "local")]) == 1
    number = _number(admin, "+15105555555", is_sip=False)
    await store.create_number(number, from_inventory=True)
    assert (await store.get_inventory_entry("+15105555555")).assigned_sid == number.sid
    await store.delete_number(number.sid, recycle_after=100)
    entry = await store.get_inventory_entry("+15105555555")
    assert entry.assigned_sid is None and entry.available_at > time.time() + 90
    with pytest.raises(ConflictError):
        await store.create_number(replace(number, sid=new_sid("PN")), from_inventory=True)
    # re-import keeps the recycling state
    await store.import_inventory([InventoryEntry("+15105555555", "US", "local", beta=True)])
    again = await store.get_inventory_entry("+15105555555")
    assert again.beta and again.available_at == entry.available_at


async def test_outbox_assigns_ids_in_order_and_pages_pending(store: SqliteStore) -> None:
    def event(call: str, seq: int) -> OutboxEvent:
        return OutboxEvent(
            None, call, "AC1", seq, "http://cb.example/", "POST", {"SequenceNumber": str(seq)},
            next_attempt_at=0.0, created_at=1.0,
        )  # fmt: skip

    first = await store.enqueue_callbacks([event("CA1", 0), event("CA1", 1), event("CA2", 0)])
    second = await store.enqueue_callbacks([event("CA1", 2), event("CA3", 0)])
    assert first == sorted(first) and second == sorted(second) and first[-1] < second[0]
    assert await store.pending_callback_count() == 5
    page = await store.pending_callbacks(0, 3)
    assert [(e.call_sid, e.sequence) for e in page] == [("CA1", 0), ("CA1", 1), ("CA2", 0)]
    assert [e.id for e in page] == first and page[0].params == {"SequenceNumber": "0"}
    rest = await store.pending_callbacks(first[-1], 10)
    assert [(e.call_sid, e.sequence) for e in rest] == [("CA1", 2), ("CA3", 0)]
    await store.mark_callbacks_delivered(first[:2])
    remaining = await store.pending_callbacks(0, 10)
    assert [(e.call_sid, e.sequence) for e in remaining] == [("CA2", 0), ("CA1", 2), ("CA3", 0)]
    assert await store.pending_callback_count() == 3
    assert await store.enqueue_callbacks([]) == []


async def test_outbox_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first = await SqliteStore.open(path)
    await first.enqueue_callbacks(
        [OutboxEvent(None, "CA", "AC", 0, "http://x/", "GET", {"a": "b"})]
    )
    await first.close()
    second = await SqliteStore.open(path)
    assert [e.params for e in await second.pending_callbacks(0, 5)] == [{"a": "b"}]
    await second.close()


async def test_call_records_upsert_and_page(store: SqliteStore) -> None:
    call = CallRecord(
        "CA1", "AC1", None, "a", "b", "inbound", "ringing", "regex", 1.0, None, None, None, None
    )
    await store.record_calls([call])
    await store.record_calls([replace(call, status="completed", end_time=5.0, urls=["http://u/"])])
    stored = await store.get_call("CA1")
    assert stored.status == "completed" and stored.urls == ["http://u/"]
    page = await store.list_calls("AC1", 0, 10)
    assert page.total == 1
    with pytest.raises(NotFoundError):
        await store.get_call("CA2")


async def test_route_rows_stream_in_batches(store: SqliteStore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import rcmlrouter.store.sqlite as module

    monkeypatch.setattr(module, "ROUTE_BATCH", 7)
    admin, _ = await store.ensure_default_setup()
    await store.bulk_insert_numbers([_number(admin, str(i), is_sip=True) for i in range(30)])
    rows = [row async for row in store.iter_route_rows()]
    assert len(rows) == 30 and len({r[0] for r in rows}) == 30
    assert all(r[1] == admin.organization_sid and r[3] is True for r in rows)


async def test_account_lineage(store: SqliteStore) -> None:
    admin, _ = await store.ensure_default_setup()
    child = await store.create_account(admin, "c", "c@example.com", None)
    grandchild = await store.create_account(child, "g", None, "password1")
    assert await store.account_lineage(grandchild.sid) == [grandchild.sid, child.sid, admin.sid]
    assert await store.account_lineage("AC404") == []
    assert (await store.get_account_by_email("C@example.com")).sid == child.sid


def test_password_hash_format() -> None:
    encoded = hash_password("correct horse")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong", encoded)
    assert not verify_password("x", "md5$abc")
    assert hash_password("same") != hash_password("same")


async def test_list_totals_follow_creates_transfers_and_deletes(store: SqliteStore) -> None:
    from rcmlrouter.store.base import NumberQuery

    admin, _ = await store.ensure_default_setup()
    child = await store.create_account(admin, "c", None, None)
    numbers = [_number(admin, f"+1510{i:07d}", is_sip=False) for i in range(5)]
    numbers[0] = replace(numbers[0], beta=True)
    await store.bulk_insert_numbers(numbers)

    async def totals() -> tuple[int, int, int]:
        mine = await store.list_numbers(NumberQuery(admin.sid), 0, 2)
        no_beta = await store.list_numbers(NumberQuery(admin.sid, include_beta=False), 0, 2)
        theirs = await store.list_numbers(NumberQuery(child.sid), 0, 2)
        return mine.total, no_beta.total, theirs.total

    assert await totals() == (5, 4, 0)
    await store.update_number(replace(numbers[0], account_sid=child.sid))
    assert await totals() == (4, 4, 1)
    await store.delete_number(numbers[1].sid, 0)
    assert await totals() == (3, 3, 1)
    # pages read backwards from the end agree with pages read forwards
    await store.bulk_insert_numbers(
        [_number(admin, f"+1415{i:07d}", is_sip=False) for i in range(40)]
    )
    query = NumberQuery(admin.sid)
    forward = [
        n.phone_number for p in range(9) for n in (await store.list_numbers(query, p, 5)).items
    ]
    assert forward == sorted(forward) and len(forward) == 43
    assert (await store.list_numbers(query, 9, 5)).items == []


async def test_buy_number_is_one_atomic_unit(store: SqliteStore) -> None:
    from rcmlrouter.store.base import InventoryEntry

    admin, _ = await store.ensure_default_setup()
    await store.import_inventory([InventoryEntry("+15105555555", "US", "mobile")])
    seen: list[str] = []

    def refuse(entry: InventoryEntry) -> IncomingNumber:
        seen.append(entry.number_type)
        raise ValueError("wrong type")

    with pytest.raises(ValueError, match="wrong type"):
        await store.buy_number("+15105555555", refuse)
    assert seen == ["mobile"]
    assert (await store.get_inventory_entry("+15105555555")).assigned_sid is None  # rolled back
    number = _number(admin, "+15105555555", is_sip=False)
    bought = await store.buy_number("+15105555555", lambda _entry: number)
    assert bought.sid == number.sid
    assert (await store.get_inventory_entry("+15105555555")).assigned_sid == number.sid
    with pytest.raises(ConflictError):
        await store.buy_number("+15105555555", lambda _e: replace(number, sid=new_sid("PN")))
    with pytest.raises(NotFoundError):
        await store.buy_number("+15105550000", lambda _e: number)
