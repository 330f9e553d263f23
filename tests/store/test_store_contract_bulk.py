"""Bulk writes of numbers on both engines: a large bulk insert stays linear (on PostgreSQL the
row-level ``number_counts`` triggers made it quadratic: 30,000 numbers took 10 s, 50,000 passed
the 15 s command timeout; migration 0012 counts per statement), and the per-account counts
follow statements that insert, move and delete many numbers at once."""

from __future__ import annotations

import time
from typing import cast

from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import NumberQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, IncomingNumber
from rcmlrouter.store.sql import SqlStore, change

BULK = 50_000
BULK_SECONDS = 10.0  # ~2-4 s on an idle developer machine, either engine
COUNTS = "SELECT account_sid, number_type, beta, total FROM number_counts WHERE total <> 0"
ACTUAL = (
    "SELECT account_sid, number_type, beta, COUNT(*) FROM incoming_phone_numbers "
    "GROUP BY account_sid, number_type, beta"
)


def _numbers(account: Account, count: int, prefix: str = "+1415") -> list[IncomingNumber]:
    now = time.time()
    return [
        IncomingNumber(
            sid=new_sid("PN"),
            account_sid=account.sid,
            organization_sid=account.organization_sid,
            phone_number=f"{prefix}{i:07d}",
            friendly_name=f"n{i}",
            is_sip=False,
            number_type="mobile" if i % 2 else "local",
            beta=i % 10 == 0,
            date_created=now,
            date_updated=now,
        )
        for i in range(count)
    ]


async def _counts_match(store: Store) -> None:
    sql = cast(SqlStore, store)
    assert sorted(await sql.fetchall(COUNTS)) == sorted(await sql.fetchall(ACTUAL))


async def test_a_large_bulk_insert_is_fast(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    numbers = _numbers(admin, BULK)
    started = time.perf_counter()
    assert await store.bulk_insert_numbers(numbers) == BULK
    elapsed = time.perf_counter() - started
    assert elapsed < BULK_SECONDS, f"{BULK} numbers took {elapsed:.1f} s"
    assert (await store.list_numbers(NumberQuery(admin.sid), 0, 1)).total == BULK
    no_beta = NumberQuery(admin.sid, include_beta=False)
    assert (await store.list_numbers(no_beta, 0, 1)).total == BULK - BULK // 10
    mobile = NumberQuery(admin.sid, number_type="mobile")
    assert (await store.list_numbers(mobile, 0, 1)).total == BULK // 2
    filtered = await store.list_numbers(NumberQuery(admin.sid, phone_number="4150001*3*"), 0, 5)
    assert filtered.total == 100 and len(filtered.items) == 5  # i = 1x3y: 10 x 10
    await _counts_match(store)


async def test_counts_follow_statements_of_many_rows(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    child = await store.create_account(admin, "child", None, None)
    await store.bulk_insert_numbers(_numbers(admin, 300))
    await store.bulk_insert_numbers(_numbers(child, 100, prefix="+1510"))
    sql = cast(SqlStore, store)
    moved = await sql.write_unit(
        lambda: change(
            "UPDATE incoming_phone_numbers SET account_sid = ? "
            "WHERE account_sid = ? AND phone_number LIKE '%3'",
            (child.sid, admin.sid),
        )
    )
    assert moved == 30
    flipped = await sql.write_unit(
        lambda: change(
            "UPDATE incoming_phone_numbers SET beta = 1 - beta, friendly_name = 'x' "
            "WHERE phone_number LIKE '%7'"
        )
    )
    assert flipped == 40
    touched = await sql.write_unit(
        lambda: change("UPDATE incoming_phone_numbers SET friendly_name = 'y'")
    )
    assert touched == 400  # no count changes: nothing to write
    removed = await sql.write_unit(
        lambda: change("DELETE FROM incoming_phone_numbers WHERE phone_number LIKE '%5'")
    )
    assert removed == 40
    await _counts_match(store)
    assert (await store.list_numbers(NumberQuery(child.sid), 0, 1)).total == 100 - 10 + 30
    assert (await store.list_numbers(NumberQuery(admin.sid), 0, 1)).total == 300 - 30 - 30
