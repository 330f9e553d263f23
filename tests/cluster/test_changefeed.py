"""The change feed on the test PostgreSQL server: two stores on one schema play two nodes.

A change committed through store A reaches node B's applier (kind, sid, action, version in
order); a killed listener connection, a lost notification (a gap) and a bulk write (a range
notification) are caught up from change_log; a pruned log makes a full reload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace

import pytest

from rcmlrouter.cluster.changefeed import Change, ChangeFeed, parse_notification
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.records import Application, IncomingNumber
from support.pg import drop_schema, new_schema_name, schema_url, terminate_backends

pytestmark = pytest.mark.postgres


class Recorder:
    """A ChangeApplier that remembers what it was given."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.reloads = 0

    async def apply(self, changes: Sequence[Change]) -> None:
        self.changes.extend(changes)

    async def reload(self) -> None:
        self.reloads += 1

    def sids(self, kind: str = "number") -> list[str]:
        return [c.sid for c in self.changes if c.kind == kind]


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = new_schema_name()
    yield name
    drop_schema(name)


@pytest.fixture
async def stores(schema: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await PostgresStore.open(schema_url(schema), node_id="node-a")
    b = await PostgresStore.open(schema_url(schema), node_id="node-b")
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@pytest.fixture
async def feed(
    schema: str, stores: tuple[PostgresStore, PostgresStore]
) -> AsyncIterator[tuple[ChangeFeed, Recorder]]:
    recorder = Recorder()
    node = ChangeFeed(schema_url(schema), stores[1], node_id=f"b-{new_sid('')}", check_interval=0.5)
    await node.open()
    node.start(recorder)
    try:
        yield node, recorder
    finally:
        await node.stop()


async def _number(store: PostgresStore, phone: str) -> IncomingNumber:
    admin, _ = await store.ensure_default_setup()
    number = IncomingNumber(
        new_sid("PN"), admin.sid, admin.organization_sid, phone, phone, True, "sip", False,
        voice_url="http://127.0.0.1:9/voice", date_created=time.time(), date_updated=time.time(),
    )  # fmt: skip
    return await store.create_number(number, from_inventory=False)


async def _until(predicate, timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def test_a_notification_lists_its_changes_or_only_its_range() -> None:
    first, count, changes = parse_notification(
        {"v": 7, "n": 2, "k": "number", "c": [["PN1", "upsert"], ["PN2", "delete"]], "t": 1.0}
    )
    assert (first, count) == (7, 2)
    assert changes == [Change(7, "number", "PN1", "upsert"), Change(8, "number", "PN2", "delete")]
    assert parse_notification({"v": 9, "n": 500, "t": 1.0}) == (9, 500, None)


async def test_changes_from_another_node_arrive_in_version_order(
    stores: tuple[PostgresStore, PostgresStore], feed: tuple[ChangeFeed, Recorder]
) -> None:
    a, _ = stores
    node, recorder = feed
    before = node.version.applied
    number = await _number(a, "51001")
    delay = await _until(lambda: number.sid in recorder.sids())
    assert delay < 1.0
    await a.update_number(replace(number, friendly_name="renamed"))
    await a.delete_number(number.sid, 0)
    await _until(lambda: recorder.sids().count(number.sid) == 3)
    mine = [c for c in recorder.changes if c.sid == number.sid]
    assert [c.action for c in mine] == ["upsert", "upsert", "delete"]
    versions = [c.version for c in recorder.changes]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert node.version.applied == versions[-1] > before
    assert node.version.health()["lag_versions"] == 0


async def test_applications_accounts_and_organizations_are_changes_too(
    stores: tuple[PostgresStore, PostgresStore], feed: tuple[ChangeFeed, Recorder]
) -> None:
    a, _ = stores
    _, recorder = feed
    admin, _ = await a.ensure_default_setup()
    now = time.time()
    app = await a.create_application(
        Application(new_sid("AP"), admin.sid, "app", "http://x/", "POST", None, "POST", None,
                    "POST", now, now)
    )  # fmt: skip
    await a.update_application(replace(app, voice_url="http://y/"))
    org = await a.add_organization("feed.example.com")
    await a.execute_many(
        "UPDATE accounts SET auth_token = ? WHERE sid = ?", [("f" * 32, admin.sid)]
    )
    await _until(lambda: admin.sid in recorder.sids("account"))
    assert recorder.sids("application") == [app.sid, app.sid]
    assert org.sid in recorder.sids("organization")


async def test_a_killed_listener_connection_loses_no_change(
    stores: tuple[PostgresStore, PostgresStore], feed: tuple[ChangeFeed, Recorder]
) -> None:
    a, _ = stores
    node, recorder = feed
    assert await terminate_backends(node.application_name) == 1
    # written while B has no listener: found by the reconnect's catch-up from change_log
    numbers = [await _number(a, f"5200{i}") for i in range(5)]
    await _until(lambda: all(n.sid in recorder.sids() for n in numbers), timeout=5)
    assert node.version.listener == "connected"
    assert recorder.reloads == 0
    later = await _number(a, "52009")  # and the new connection hears what comes next
    await _until(lambda: later.sid in recorder.sids())


async def test_a_gap_is_caught_up_and_a_pruned_log_reloads(
    stores: tuple[PostgresStore, PostgresStore], feed: tuple[ChangeFeed, Recorder]
) -> None:
    a, _ = stores
    node, recorder = feed
    await _until(lambda: node.version.applied == node.version.known)
    # pretend B missed everything since version 0: the log still has it all -> catch-up
    node.version.applied = 0
    seen = len(recorder.changes)
    number = await _number(a, "53001")
    await _until(lambda: number.sid in recorder.sids()[seen:])
    assert recorder.reloads == 0 and len(recorder.changes) > seen + 1
    # the log pruned past what B misses -> a full reload
    await a.execute_many("DELETE FROM change_log WHERE version < ?", [(10**9,)])
    node.version.applied = 0
    await _number(a, "53002")
    await _until(lambda: recorder.reloads == 1)
    assert node.version.applied == node.version.known


async def test_a_bulk_write_arrives_as_a_range_read_from_the_log(
    stores: tuple[PostgresStore, PostgresStore], feed: tuple[ChangeFeed, Recorder]
) -> None:
    a, _ = stores
    _, recorder = feed
    admin, _ = await a.ensure_default_setup()
    now = time.time()
    bulk = [
        IncomingNumber(new_sid("PN"), admin.sid, admin.organization_sid, f"54{i:04d}",
                       "bulk", True, "sip", False, date_created=now, date_updated=now)
        for i in range(300)
    ]  # fmt: skip
    assert await a.bulk_insert_numbers(bulk) == 300  # one COPY: one notification, a range
    await _until(lambda: all(n.sid in recorder.sids() for n in bulk))
    assert recorder.reloads == 0


async def test_the_periodic_check_finds_what_no_notification_said(
    stores: tuple[PostgresStore, PostgresStore], feed: tuple[ChangeFeed, Recorder]
) -> None:
    a, _ = stores
    node, recorder = feed
    node._on_notify = lambda *_args: None  # type: ignore[method-assign]  # notifications lost
    await node.stop()
    await node.open()  # re-LISTEN with the lossy handler
    node.start(recorder)
    number = await _number(a, "55001")
    delay = await _until(lambda: number.sid in recorder.sids(), timeout=3)
    assert delay < 1.5  # check_interval is 0.5 s
