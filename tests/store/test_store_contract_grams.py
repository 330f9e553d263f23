"""``PhoneNumber`` filters through the gram index (migration 0010) give exactly what a scan of
the account gives, on both engines: random numbers, filters with ``*``, numbers moved between
accounts and deleted, the other filters combined, pages past the end."""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace

import pytest

from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import NumberCursor, NumberQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.number_grams import best_window, pattern_windows
from rcmlrouter.store.records import Account, IncomingNumber
from support.store_engines import Engine


def _number(
    account: Account, phone: str, *, kind: str = "local", beta: bool = False
) -> IncomingNumber:
    now = time.time()
    return IncomingNumber(
        sid=new_sid("PN"),
        account_sid=account.sid,
        organization_sid=account.organization_sid,
        phone_number=phone,
        friendly_name="even" if phone[-1] in "02468" else "odd",
        is_sip=not phone.startswith("+"),
        number_type=kind,
        beta=beta,
        date_created=now,
        date_updated=now,
    )


def _matches(pattern: str, phone: str) -> bool:
    body = pattern.removeprefix("+")
    regex = "".join("[0-9]" if ch == "*" else re.escape(ch) for ch in body)
    return re.search(regex, phone, re.IGNORECASE) is not None


async def _walk(store: Store, query: NumberQuery) -> list[tuple[str, str]]:
    """The whole list through keyset pages of 7 (Twilio's PageToken), checked backwards too."""
    seen: list[tuple[str, str]] = []
    cursor: NumberCursor | None = None
    while page := await store.list_numbers_from(query, cursor, 7):
        seen += [(n.phone_number, n.sid) for n in page]
        cursor = NumberCursor(page[-1].phone_number, page[-1].sid)
    if len(seen) > 7:  # the page before the last one, read backwards from it
        last = seen[-1]
        before = await store.list_numbers_from(query, NumberCursor(*last, before=True), 7)
        assert [(n.phone_number, n.sid) for n in before] == seen[-8:-1]
    return seen


def test_windows_skip_letters_and_expand_stars() -> None:
    assert pattern_windows("555") == []
    assert pattern_windows("+1415") == [["1415"]]
    assert pattern_windows("alice") == []
    windows = pattern_windows("0*12")
    assert windows == [[f"0{d}12" for d in "0123456789"]]
    assert len(pattern_windows("1***")) == 0  # three wildcards: not worth 1000 grams
    assert best_window([["a"], ["b", "c"]], {"a": 900, "b": 3, "c": 4, "": 10}) == ["b", "c"]
    assert best_window([["a"]], {"a": 1001, "": 4000}) is None  # a quarter of the account
    assert best_window([["a"]], {"a": 1001, "": 4004}) == ["a"]


async def test_indexed_filters_equal_a_scan(store: Store, engine: Engine) -> None:
    admin, _ = await store.ensure_default_setup()
    other = await store.create_account(admin, "other", None, None)
    rng = random.Random(7)
    phones = sorted({f"+1{rng.randint(2000000000, 2009999999)}" for _ in range(400)})
    numbers = [
        _number(admin, p, kind=rng.choice(["local", "mobile"]), beta=rng.random() < 0.2)
        for p in phones
    ]
    numbers += [_number(admin, s, kind="sip") for s in ("1234", "*7711133#", "mms:+12005551234")]
    await store.bulk_insert_numbers(numbers)
    moved = numbers[:40]  # to another account, then some back: the triggers follow
    for number in moved:
        await store.update_number(replace(number, account_sid=other.sid))
    for number in moved[:10]:
        await store.update_number(replace(number, account_sid=admin.sid))
    for number in numbers[40:60]:
        await store.delete_number(number.sid, 0)
    assert engine.count("number_grams") > 0

    live = {n.sid: n for n in numbers[60:] + moved[:10]}
    patterns = ["2005", "200*", "*1*3", "0*12", "2*0*", "+1200", "1234", "7711", "+1200555123"]
    patterns += [str(rng.randint(1000, 9999)) for _ in range(10)]
    for pattern in patterns:
        for extra in (
            {},
            {"number_type": "mobile"},
            {"include_beta": False},
            {"friendly_name": "odd"},
        ):
            query = NumberQuery(admin.sid, phone_number=pattern, **extra)  # type: ignore[arg-type]
            expected = sorted(
                (n.phone_number, n.sid)
                for n in live.values()
                if _matches(pattern, n.phone_number)
                and (query.number_type is None or n.number_type == query.number_type)
                and (query.include_beta or not n.beta)
                and (query.friendly_name is None or n.friendly_name == query.friendly_name)
            )
            page = await store.list_numbers(query, 0, 1000)
            got = [(n.phone_number, n.sid) for n in page.items]
            assert (got, page.total) == (expected, len(expected)), (pattern, extra)
            assert await _walk(store, query) == expected, (pattern, extra)
            second = await store.list_numbers(query, 1, 3)
            assert [(n.phone_number, n.sid) for n in second.items] == expected[3:6]
            assert second.total == len(expected)
    past = await store.list_numbers(NumberQuery(admin.sid, phone_number="2005"), 99, 10)
    assert past.items == [] and past.total == sum(
        _matches("2005", n.phone_number) for n in live.values()
    )
    moved_away = await store.list_numbers(NumberQuery(other.sid, phone_number="200*"), 0, 100)
    assert {n.sid for n in moved_away.items} == {n.sid for n in moved[10:]}


async def test_a_selective_filter_never_scans(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _ = await store.ensure_default_setup()
    await store.bulk_insert_numbers([_number(admin, f"+1212{i:07d}") for i in range(2000)])

    def no_scan(*_args: object) -> None:
        raise AssertionError("the account was scanned")

    module = "rcmlrouter.store.queries_numbers"  # the listing code of both engines
    monkeypatch.setattr(f"{module}.keyset_sql", no_scan)
    monkeypatch.setattr(f"{module}.filtered_page", no_scan)
    query = NumberQuery(admin.sid, phone_number="21200*12*")
    page = await store.list_numbers(query, 0, 50)
    assert page.total == 100  # +1212 00 0 12 YZ: i = 1200…1299
    assert [n.phone_number for n in page.items][:2] == ["+12120001200", "+12120001201"]
    assert len(await store.list_numbers_from(query, None, 150)) == 100
