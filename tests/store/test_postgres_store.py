"""What only the PostgreSQL store has: a network between it and its database, migrations that
must stay twins of the SQLite ones, and ``migrate --from sqlite:/// --to postgresql://``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest

from rcmlrouter import cli
from rcmlrouter.errors import ConflictError, StoreUnavailableError
from rcmlrouter.store.base import Store
from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.records import (
    CallRecord,
    InventoryEntry,
    MessageRecord,
    Notification,
    OutboxEvent,
    Recording,
)
from rcmlrouter.store.sqlite import SqliteStore
from rcmlrouter.store.sqlite_core import migration_scripts
from rcmlrouter.store.stream_records import StreamRecord
from support.pg import SERVER_URL, new_schema_name, schema_url, terminate_backends
from support.tcpproxy import TcpProxy

pytestmark = pytest.mark.postgres


def test_every_sqlite_migration_has_a_postgres_twin() -> None:
    folder = resources.files("rcmlrouter.store").joinpath("migrations")
    sqlite = sorted(e.name for e in folder.iterdir() if e.name.endswith(".sql"))
    postgres = sorted(
        e.name for e in folder.joinpath("postgres").iterdir() if e.name.endswith(".sql")
    )
    assert sqlite == postgres, (
        "each migrations/NNNN_name.sql needs migrations/postgres/NNNN_name.sql"
    )
    numbers = [int(name[:4]) for name in sqlite]
    assert numbers == list(range(1, len(numbers) + 1)), "migration numbers must have no gap"


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A fresh schema for one test (created by the store, dropped here)."""
    import asyncpg

    name = new_schema_name()
    yield name
    conn = await asyncpg.connect(SERVER_URL, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


# ---- a lost connection ------------------------------------------------------------------------


async def test_terminated_backends_are_replaced_without_a_restart(schema: str) -> None:
    app_name = schema  # the pool's connections are the ones with this application_name
    store = await PostgresStore.open(schema_url(schema, application_name=app_name))
    try:
        admin, _ = await store.ensure_default_setup()
        assert await terminate_backends(app_name) >= 1
        await asyncio.sleep(0.1)
        started = time.monotonic()
        again = await asyncio.wait_for(store.get_account(admin.sid), 10)
        assert again == admin and time.monotonic() - started < 5
        # a write made right after a kill is not lost and not doubled
        await terminate_backends(app_name)
        ids = await asyncio.wait_for(
            store.enqueue_callbacks(
                [OutboxEvent(None, "CA1", admin.sid, 0, "http://x/", "GET", {})]
            ),
            10,
        )
        assert len(ids) == 1 and await store.pending_callback_count() == 1
    finally:
        await store.close()


async def test_an_unreachable_database_is_a_prompt_unavailable_error_then_recovers(
    schema: str,
) -> None:
    host, port = "127.0.0.1", 5432
    proxy = await TcpProxy(host, port).start()
    url = schema_url(schema).replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    store = await PostgresStore.open(url)
    try:
        admin, _ = await store.ensure_default_setup()
        await proxy.stop()  # the network is gone: connections reset, new ones refused
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(store.get_account(admin.sid), 20)
        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(store.record_calls([_call(admin.sid)]), 20)
        assert time.monotonic() - started < 15
        await proxy.start()  # back on the same port
        assert await asyncio.wait_for(store.get_account(admin.sid), 10) == admin
        await store.record_calls([_call(admin.sid)])
        assert (await store.get_call("CA1")).account_sid == admin.sid
    finally:
        await store.close()
        await proxy.stop()


async def test_an_unreachable_server_at_open_is_a_prompt_unavailable_error() -> None:
    from support.ports import free_port

    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await PostgresStore.open(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    assert time.monotonic() - started < 10


async def test_nodes_starting_together_migrate_once_and_share_one_admin(schema: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(schema_url(schema)) for _ in range(3)))
    try:
        setups = await asyncio.gather(*(s.ensure_default_setup() for s in stores))
        assert len({admin.sid for admin, _ in setups}) == 1
        assert [token is not None for _, token in setups].count(True) == 1
        assert (await stores[0].fetchone("SELECT COUNT(*) FROM schema_version")) == (
            len(migration_scripts()),
        )
    finally:
        for store in stores:
            await store.close()


# ---- migrate --from sqlite --to postgresql ---------------------------------------------------


def _call(account: str, sid: str = "CA1") -> CallRecord:
    return CallRecord(
        sid,
        account,
        None,
        "a",
        "b",
        "inbound",
        "completed",
        "exact",
        1.5,
        2.0,
        3.0,
        1.0,
        200,
        urls=["http://u/"],
        next_sequence=2,
        status_callback="http://cb/",
    )


async def _populate(store: Store) -> dict[str, object]:
    from rcmlrouter.store.records import Application, IncomingNumber

    admin, _ = await store.ensure_default_setup()
    child = await store.create_account(admin, "child", "child@example.com", "secret")
    grandchild = await store.create_account(child, "grandchild", None, None)
    await store.add_organization("other.example")
    now = time.time()
    app = Application(
        new_sid("AP"), child.sid, "App", "http://v/", "GET", None, "POST", None, "POST", now, now
    )
    await store.create_application(app)
    await store.import_inventory(
        [InventoryEntry(f"+1510555{i:04d}", "US", "local", region="CA") for i in range(30)]
    )
    number = IncomingNumber(
        new_sid("PN"),
        child.sid,
        admin.organization_sid,
        "+15105550007",
        "bought",
        False,
        "local",
        False,
        voice_application_sid=app.sid,
        date_created=now,
        date_updated=now,
    )
    await store.create_number(number, from_inventory=True)
    sip = [
        IncomingNumber(
            new_sid("PN"),
            grandchild.sid,
            admin.organization_sid,
            f"{2000 + i}",
            "sip",
            True,
            "sip",
            i % 2 == 0,
            voice_url="http://s/",
            date_created=now,
            date_updated=now,
        )
        for i in range(25)
    ]
    await store.bulk_insert_numbers(sip)
    await store.record_calls([_call(child.sid, f"CA{i}") for i in range(12)])
    await store.record_messages(
        [
            MessageRecord(
                f"SM{i}",
                child.sid,
                number.sid,
                "+1",
                "+2",
                "hi",
                "inbound",
                "accepted",
                float(i),
                sip_headers={"X-A": "b"},
                dedupe_key=f"k{i}",
            )
            for i in range(7)
        ]
    )
    await store.add_notifications(
        [Notification("NO1", child.sid, "CA1", 11200, "error", "m", None, 1.0)]
    )
    await store.add_recording(Recording("RE1", child.sid, "CA1", 2.5, 1.0))
    stream = StreamRecord(
        "MZ1", child.sid, "CA1", "agent", "wss://a/", "both_tracks", "connect",
        "failed", 31920, "refused", 1.0, 2.0,
    )  # fmt: skip
    await store.save_streams([stream])
    room = ConferenceRecord("CF1", child.sid, "room", "completed", "node-a", 1.0, 2.0,
                            reason_ended="last-participant-left")  # fmt: skip
    flags = (False, True, False)  # hold, start_conference_on_enter, end_conference_on_exit
    people = [
        ParticipantRecord("CF1", f"CA{i}", child.sid, "completed", i == 1, *flags, 1.0, 2.0)
        for i in range(1, 6)
    ]
    await store.save_conference_rows([room], people)
    ids = await store.enqueue_callbacks(
        [
            OutboxEvent(None, "CA1", child.sid, i, "http://cb/", "POST", {"i": str(i)})
            for i in range(5)
        ]
    )
    await store.mark_callbacks_delivered(ids[:2])
    return {"admin": admin, "child": child, "grandchild": grandchild, "number": number, "app": app}


EXPECTED = {
    "organizations": 2,
    "accounts": 3,
    "applications": 1,
    "incoming_phone_numbers": 26,
    "inventory": 30,
    "calls": 12,
    "messages": 7,
    "notifications": 1,
    "recordings": 1,
    "streams": 1,
    "conferences": 1,
    "conference_participants": 5,
    "callback_outbox": 3,
}


async def test_migrate_copies_a_sqlite_store_into_postgres(tmp_path: Path, schema: str) -> None:
    from rcmlrouter.store.filters import NumberQuery
    from rcmlrouter.store.migrate_copy import copy_store

    source = await SqliteStore.open(tmp_path / "source.db")
    made = await _populate(source)
    target = await PostgresStore.open(schema_url(schema))
    try:
        assert await copy_store(source, target, batch=4) == EXPECTED
        child, number = made["child"], made["number"]
        assert await target.get_account(child.sid) == await source.get_account(child.sid)  # type: ignore[attr-defined]
        assert await target.get_number(number.sid) == await source.get_number(number.sid)  # type: ignore[attr-defined]
        assert (await target.get_number(number.sid)).voice_application_name == "App"  # type: ignore[attr-defined]
        assert await target.get_message("SM3") == await source.get_message("SM3")
        assert await target.get_call("CA5") == await source.get_call("CA5")
        assert await target.call_streams("CA1") == await source.call_streams("CA1")
        assert await target.get_conference("CF1") == await source.get_conference("CF1")
        assert await target.call_conferences("CA1") == await source.call_conferences("CA1")
        assert await target.call_conferences("CA5") == await source.call_conferences("CA5")
        assert await target.pending_callbacks(0, 10) == await source.pending_callbacks(0, 10)
        grandchild = made["grandchild"]
        query = NumberQuery(grandchild.sid, include_beta=False)  # type: ignore[attr-defined]
        assert (await target.list_numbers(query, 0, 5)).total == 12  # number_counts rebuilt
        assert sorted([r async for r in target.iter_route_rows()]) == sorted(
            [r async for r in source.iter_route_rows()]
        )
        # new outbox ids continue after the copied ones
        later = await target.enqueue_callbacks([OutboxEvent(None, "CA9", "AC", 0, "u", "GET", {})])
        assert later[0] > max(e.id or 0 for e in await source.pending_callbacks(0, 10))
        with pytest.raises(ConflictError, match="not empty"):
            await copy_store(source, target)
        assert (await copy_store(source, target, force=True))["callback_outbox"] == 3
        assert await target.pending_callback_count() == 3
    finally:
        await source.close()
        await target.close()


def test_migrate_command_prints_counts(
    tmp_path: Path, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def populate() -> None:
        source = await SqliteStore.open(tmp_path / "source.db")
        await _populate(source)
        await source.close()

    asyncio.run(populate())
    args = ["migrate", "--from", f"sqlite:///{tmp_path / 'source.db'}", "--to", schema_url(schema)]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"copied": EXPECTED}
    assert cli.main(args) == 1  # the target is not empty now
    assert "not empty" in capsys.readouterr().err
    assert cli.main([*args, "--force"]) == 0
    assert cli.main(["migrate", "--from", f"sqlite:///{tmp_path / 'source.db'}"]) == 2
