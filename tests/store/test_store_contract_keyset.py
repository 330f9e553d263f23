"""Store contract for the Twilio alias: keyset number pages, account lists and updates.

Runs on SQLite and PostgreSQL (the ``store`` fixture of tests/store/conftest.py).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import NumberCursor, NumberQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Account, IncomingNumber


def _number(account: Account, phone: str, sid: str | None = None) -> IncomingNumber:
    now = time.time()
    return IncomingNumber(
        sid=sid or new_sid("PN"),
        account_sid=account.sid,
        organization_sid=account.organization_sid,
        phone_number=phone,
        friendly_name=phone,
        is_sip=True,
        number_type="sip",
        beta=False,
        date_created=now,
        date_updated=now,
    )


def _cursor(number: IncomingNumber, before: bool = False) -> NumberCursor:
    return NumberCursor(number.phone_number, number.sid, before)


async def test_keyset_pages_walk_the_list_in_order(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    await store.bulk_insert_numbers([_number(admin, f"{i:04d}") for i in range(11)])
    query = NumberQuery(admin.sid)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_numbers_from(query, cursor, 4)
        seen += [n.phone_number for n in page]
        if len(page) < 4:
            break
        cursor = _cursor(page[-1])
    assert seen == [f"{i:04d}" for i in range(11)]
    whole = await store.list_numbers_from(query, None, 100)
    assert [n.sid for n in whole] == [n.sid for n in (await store.list_numbers(query, 0, 50)).items]


async def test_keyset_pages_are_stable_under_inserts_and_deletes(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    await store.bulk_insert_numbers([_number(admin, f"2{i:03d}") for i in range(6)])
    query = NumberQuery(admin.sid)
    first = await store.list_numbers_from(query, None, 3)
    # numbers inserted before the cursor and a delete behind it do not shift the next page
    await store.bulk_insert_numbers([_number(admin, "1000"), _number(admin, "1001")])
    await store.delete_number(first[0].sid, 0)
    second = await store.list_numbers_from(query, _cursor(first[-1]), 3)
    assert [n.phone_number for n in second] == ["2003", "2004", "2005"]
    # the page before the second one, read backwards, is in list order (now without 2000)
    back = await store.list_numbers_from(query, _cursor(second[0], before=True), 3)
    assert [n.phone_number for n in back] == ["1001", "2001", "2002"]


async def test_keyset_ties_on_phone_number_order_by_sid(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    org = await store.add_organization("other.example")
    other = replace(admin, organization_sid=org.sid)
    # SIP numbers are unique per organization: the same string twice, in two organizations
    a = _number(admin, "5000", sid="PN" + "a" * 32)
    b = _number(other, "5000", sid="PN" + "b" * 32)
    await store.bulk_insert_numbers([b, a, _number(admin, "6000")])
    query = NumberQuery(admin.sid)
    assert [n.sid for n in await store.list_numbers_from(query, None, 1)] == [a.sid]
    after_a = await store.list_numbers_from(query, _cursor(a), 5)
    assert [n.sid for n in after_a][:1] == [b.sid] and len(after_a) == 2
    assert [n.sid for n in await store.list_numbers_from(query, _cursor(b, True), 5)] == [a.sid]


async def test_keyset_honours_filters(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    child = await store.create_account(admin, "c", None, None)
    await store.bulk_insert_numbers(
        [
            _number(admin, "7001"),
            replace(_number(admin, "7002"), friendly_name="office"),
            _number(admin, "8001"),
            _number(child, "7003"),
        ]
    )
    found = await store.list_numbers_from(NumberQuery(admin.sid, phone_number="70*"), None, 10)
    assert [n.phone_number for n in found] == ["7001", "7002"]
    office = await store.list_numbers_from(NumberQuery(admin.sid, friendly_name="office"), None, 9)
    assert [n.phone_number for n in office] == ["7002"]
    assert await store.list_numbers_from(NumberQuery(child.sid, number_type="local"), None, 9) == []


async def test_account_list_and_update(store: Store) -> None:
    admin, _ = await store.ensure_default_setup()
    child = await store.create_account(admin, "child", None, None)
    grandchild = await store.create_account(child, "grandchild", None, None)
    other = await store.create_account(admin, "sibling", None, None)

    async def sids(root: str, name: str | None = None, status: str | None = None) -> list[str]:
        page = await store.list_accounts(root, name, status, 0, 10)
        assert page.total == len(page.items)
        return [a.sid for a in page.items]

    assert set(await sids(admin.sid)) == {admin.sid, child.sid, grandchild.sid, other.sid}
    assert set(await sids(child.sid)) == {child.sid, grandchild.sid}
    assert await sids(child.sid, name="grandchild") == [grandchild.sid]
    page = await store.list_accounts(admin.sid, None, None, 1, 3)
    assert page.total == 4 and len(page.items) == 1

    renamed = replace(grandchild, friendly_name="renamed", status="suspended", date_updated=9.0)
    assert await store.update_account(renamed) == renamed
    assert await store.get_account(grandchild.sid) == renamed
    assert await sids(admin.sid, status="suspended") == [grandchild.sid]
    with pytest.raises(NotFoundError):
        await store.update_account(replace(renamed, sid="AC404"))
