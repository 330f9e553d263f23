"""The Store contract: every behaviour the daemon and the API rely on, on SQLite and PostgreSQL.

The ``store`` and ``engine`` fixtures (tests/store/conftest.py) run each test on both engines.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from rcmlrouter.errors import ConflictError, NotFoundError
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import CallQuery, InventoryQuery, NumberQuery
from rcmlrouter.store.ids import hash_password, new_sid, verify_password
from rcmlrouter.store.records import (
    Account,
    Application,
    CallRecord,
    IncomingNumber,
    InventoryEntry,
    NumberChange,
    OutboxEvent,
)
from rcmlrouter.store.sqlite_core import migration_scripts
from support.store_engines import Engine


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


def _call(sid: str = "CA1", **changes: object) -> CallRecord:
    call = CallRecord(
        sid, "AC1", "PN1", "alice", "1234", "inbound", "ringing", "exact", 1.0, None, None,
        None, 180, next_sequence=1, status_callback="http://cb/", status_callback_method="GET",
    )  # fmt: skip
    return replace(call, **changes)  # type: ignore[arg-type]


def _event(sid: str, sequence: int, account: str = "AC1") -> OutboxEvent:
    return OutboxEvent(None, sid, account, sequence, "http://cb/", "GET", {"S": str(sequence)})


# ---- schema ---------------------------------------------------------------------------------


async def test_migrations_are_idempotent(engine: Engine) -> None:
    first = await engine.open()
    admin, token = await first.ensure_default_setup()
    assert token is not None and len(token) == 32
    await first.close()
    latest = migration_scripts()[-1][0]
    second = await engine.open()
    try:
        assert await second.migrate() == latest  # type: ignore[attr-defined]
        again, no_token = await second.ensure_default_setup()
        assert again == admin and no_token is None
    finally:
        await second.close()
    assert engine.count("schema_version") == len(migration_scripts())


# ---- organizations and accounts ---------------------------------------------------------------


async def test_organizations_and_account_lineage(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    await store.add_organization("B.example ")
    await store.add_organization("a.example")
    assert [o.domain for o in await store.list_organizations()] == [
        "default.rcmlrouter.local",
        "a.example",
        "b.example",
    ]
    with pytest.raises(ConflictError):
        await store.add_organization("A.EXAMPLE")
    child = await store.create_account(admin, "c", "c@example.com", None)
    grandchild = await store.create_account(child, "g", None, "password1")
    assert await store.account_lineage(grandchild.sid) == [grandchild.sid, child.sid, admin.sid]
    assert await store.account_lineage("AC404") == []
    assert (await store.get_account_by_email("C@example.com")).sid == child.sid
    assert await store.get_account(grandchild.sid) == grandchild
    assert grandchild.password_hash and verify_password("password1", grandchild.password_hash)
    with pytest.raises(ConflictError):
        await store.create_account(admin, "dup", "C@EXAMPLE.com", None)
    with pytest.raises(NotFoundError):
        await store.get_account("AC404")
    with pytest.raises(NotFoundError):
        await store.get_account_by_email("nobody@example.com")


def test_password_hash_format() -> None:
    encoded = hash_password("correct horse")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong", encoded)
    assert not verify_password("x", "md5$abc")
    assert hash_password("same") != hash_password("same")


# ---- numbers ----------------------------------------------------------------------------------


async def test_uniqueness_is_enforced_by_the_database(store: Store) -> None:
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


async def test_change_listeners_fire_after_commit_only(store: Store, engine: Engine) -> None:
    admin, _ = await store.ensure_default_setup()
    seen: list[tuple[NumberChange, bool]] = []

    def listener(change: NumberChange) -> None:
        committed = engine.count("incoming_phone_numbers", "sid = ?", change.sid)
        seen.append((change, committed == 1))

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
    with pytest.raises(NotFoundError):
        await store.update_number(number)
    assert len(seen) == 3


async def test_route_rows_stream_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import rcmlrouter.store.postgres as pg_module
    import rcmlrouter.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "ROUTE_BATCH", 7)
    monkeypatch.setattr(pg_module, "ROUTE_BATCH", 7)
    admin, _ = await store.ensure_default_setup()
    await store.bulk_insert_numbers([_number(admin, str(i), is_sip=True) for i in range(30)])
    rows = [row async for row in store.iter_route_rows()]
    assert len(rows) == 30 and len({r[0] for r in rows}) == 30
    assert all(r[1] == admin.organization_sid and r[3] is True for r in rows)
    assert all(isinstance(r[4], float) for r in rows)


async def test_list_totals_follow_creates_transfers_and_deletes(store: Store) -> None:
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
    await store.update_number(replace(numbers[2], friendly_name="renamed"))
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


async def test_list_filters(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    await store.bulk_insert_numbers(
        [
            _number(admin, "+15105550001", is_sip=False),
            replace(_number(admin, "+15105550002", is_sip=False), friendly_name="office"),
            _number(admin, "+14155551234", is_sip=False),
            _number(admin, "1_00", is_sip=True),
            _number(admin, "1000", is_sip=True),
        ]
    )

    async def phones(query: NumberQuery, page: int = 0, size: int = 10) -> tuple[list[str], int]:
        found = await store.list_numbers(query, page, size)
        return [n.phone_number for n in found.items], found.total

    assert await phones(NumberQuery(admin.sid, phone_number="510555")) == (
        ["+15105550001", "+15105550002"],
        2,
    )
    assert await phones(NumberQuery(admin.sid, phone_number="+1*1*555")) == (
        ["+14155551234", "+15105550001", "+15105550002"],
        3,
    )
    assert await phones(NumberQuery(admin.sid, phone_number="1_0")) == (["1_00"], 1)  # literal _
    assert await phones(NumberQuery(admin.sid, friendly_name="office")) == (["+15105550002"], 1)
    assert await phones(NumberQuery(admin.sid, number_type="sip")) == (["1000", "1_00"], 2)
    assert await phones(NumberQuery(admin.sid, phone_number="555"), page=5, size=2) == ([], 3)


async def test_buy_number_is_one_atomic_unit(store: Store) -> None:
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


# ---- applications -----------------------------------------------------------------------------


async def test_applications_and_the_numbers_using_them(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    now = time.time()
    app = Application(
        new_sid("AP"), admin.sid, "Voice app", "http://v/", "GET", None, "POST", None, "POST",
        now, now,
    )  # fmt: skip
    await store.create_application(app)
    await store.create_application(replace(app, sid=new_sid("AP"), friendly_name="Another"))
    assert await store.get_application(app.sid) == app
    page = await store.list_applications(admin.sid, 0, 1)
    assert page.total == 2 and [a.friendly_name for a in page.items] == ["Another"]
    number = replace(_number(admin, "3000", is_sip=True), voice_application_sid=app.sid)
    created = await store.create_number(number, from_inventory=False)
    assert created.voice_application_name == "Voice app"
    seen: list[NumberChange] = []
    store.add_change_listener(seen.append)
    await store.update_application(replace(app, friendly_name="Renamed"))
    assert [c.number.voice_application_name for c in seen if c.number] == ["Renamed"]
    await store.delete_application(app.sid)
    assert (await store.get_number(number.sid)).voice_application_sid is None
    assert seen[-1].number is not None and seen[-1].number.voice_application_sid is None
    with pytest.raises(NotFoundError):
        await store.get_application(app.sid)
    with pytest.raises(NotFoundError):
        await store.update_application(app)
    with pytest.raises(NotFoundError):
        await store.delete_application(app.sid)


# ---- inventory --------------------------------------------------------------------------------


async def test_inventory_claim_and_recycle(store: Store) -> None:
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
    with pytest.raises(NotFoundError):
        await store.get_inventory_entry("+19999999999")


async def test_inventory_search(store: Store) -> None:
    from rcmlrouter.store.records import Capabilities

    await store.import_inventory(
        [
            InventoryEntry("+15105550001", "US", "local", region="CA", postal_code="94501"),
            InventoryEntry("+15105550002", "US", "local", capabilities=Capabilities(sms=False)),
            InventoryEntry("+14155550003", "US", "local", beta=True),
            InventoryEntry("+18005550004", "US", "toll-free"),
            InventoryEntry("+442071234567", "GB", "local"),
        ]
    )

    async def found(now: float = time.time(), **filters: object) -> list[str]:
        query = InventoryQuery(**{"iso_country": "US", "number_type": "local", **filters})  # type: ignore[arg-type]
        return [e.phone_number for e in await store.list_inventory(query, now)]

    assert await found() == ["+14155550003", "+15105550001", "+15105550002"]
    assert await found(area_code="510") == ["+15105550001", "+15105550002"]
    assert await found(contains="555*00*") == ["+14155550003", "+15105550001", "+15105550002"]
    assert await found(contains="0*1") == ["+15105550001"]
    assert await found(region="CA", postal_code="94501") == ["+15105550001"]
    assert await found(sms=False) == ["+15105550002"]
    assert await found(include_beta=False) == ["+15105550001", "+15105550002"]
    assert await found(limit=1) == ["+14155550003"]
    assert await found(now=-1.0) == []  # available_at 0 is after "now"
    picked = await store.pick_available_number(InventoryQuery("US", "toll-free"), time.time())
    assert picked.phone_number == "+18005550004"
    with pytest.raises(NotFoundError):
        await store.pick_available_number(InventoryQuery("FR", None), time.time())


# ---- calls, notifications ---------------------------------------------------------------------


async def test_call_records_upsert_and_page(store: Store) -> None:
    call = CallRecord(
        "CA1", "AC1", None, "a", "b", "inbound", "ringing", "regex", 1.0, None, None, None, None
    )
    await store.record_calls([call, replace(call, sid="CA0", start_time=0.5)])
    await store.record_calls([replace(call, status="completed", end_time=5.0, urls=["http://u/"])])
    stored = await store.get_call("CA1")
    assert stored.status == "completed" and stored.urls == ["http://u/"]
    assert stored.end_time == 5.0 and stored.used_fallback is False
    page = await store.list_calls(CallQuery("AC1"), 0, 1)
    assert page.total == 2 and [c.sid for c in page.items] == ["CA1"]  # newest first
    assert [c.sid for c in await store.unfinished_calls()] == ["CA0"]
    with pytest.raises(NotFoundError):
        await store.get_call("CA2")


async def test_notifications(store: Store) -> None:
    from rcmlrouter.store.records import Notification

    items = [
        Notification(f"NO{i}", "AC1", "CA1", 11200, "error", f"m{i}", "http://x/", float(i))
        for i in range(3)
    ]
    await store.add_notifications(items)
    await store.add_notifications([])
    assert await store.get_notification("NO1") == items[1]
    page = await store.list_notifications("AC1", 0, 2)
    assert page.total == 3 and [n.sid for n in page.items] == ["NO2", "NO1"]
    with pytest.raises(ConflictError):
        await store.add_notifications([items[0]])
    with pytest.raises(NotFoundError):
        await store.get_notification("NO9")
