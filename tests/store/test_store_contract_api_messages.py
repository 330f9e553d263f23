"""The Store contract for POST Messages: a message created with its Idempotency-Key record in one
transaction (or the record that already holds the key, and nothing created), expiry and pruning
of keys, concurrent claims of one key from two connections, the API's unfinished messages, the
wire identity round trip and the exact account-number lookup; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from rcmlrouter.store.base import Store
from rcmlrouter.store.filters import MessageQuery
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import IdempotencyRecord, IncomingNumber, MessageRecord, MessageWire
from support.store_engines import Engine

TTL = 86400.0


def _message(
    status: str = "queued", created: float | None = None, **changes: object
) -> MessageRecord:
    message = MessageRecord(
        new_sid("SM"), "AC1", "PN1", "+15105555555", "+15551230000", "hello", "outbound-api",
        status, time.time() if created is None else created,
        status_callback="http://cb.example/status", status_callback_method="GET",
        api_version="2010-04-01",
    )  # fmt: skip
    return replace(message, **changes)  # type: ignore[arg-type]


def _key(
    key: str = "k-1", fingerprint: str = "f1", created: float | None = None
) -> IdempotencyRecord:
    return IdempotencyRecord(
        "AC1", key, fingerprint, 201, "application/json", '{"sid": "SM…"}', None,
        time.time() if created is None else created,
    )  # fmt: skip


async def _count(store: Store) -> int:
    return (await store.list_messages(MessageQuery("AC1"), 0, 1000)).total


async def test_a_message_round_trips_with_its_api_fields_and_wire(store: Store) -> None:
    message = _message()
    assert await store.create_message(message, None, TTL) is None
    assert await store.get_message(message.sid) == message
    wire = MessageWire(
        "abc@rcmlrouter", 2, "tag1", "sip:+15105555555@127.0.0.1", "z9hG4bKx",
        (("Authorization", 'Digest username="u", nonce="n"'),),
    )  # fmt: skip
    sending = replace(message, status="sending", wire=wire)
    await store.write_journal([], [sending], [])
    assert await store.get_message(message.sid) == sending


async def test_a_key_creates_once_and_then_answers_with_its_record(store: Store) -> None:
    first, second = _message(), _message()
    record = replace(_key(), resource_sid=first.sid)
    assert await store.create_message(first, record, TTL) is None
    held = await store.create_message(second, replace(_key(), fingerprint="other"), TTL)
    assert held == record  # the first answer, whatever the second request was
    assert await _count(store) == 1  # the second message was not written
    since = time.time() - TTL
    assert await store.get_idempotency_record("AC1", "k-1", since) == record
    assert await store.get_idempotency_record("AC2", "k-1", since) is None  # per account
    assert await store.get_idempotency_record("AC1", "k-2", since) is None


async def test_an_expired_key_may_be_used_again(store: Store) -> None:
    old = _key(created=time.time() - TTL - 5)
    assert await store.create_message(_message(), old, TTL) is None
    assert await store.get_idempotency_record("AC1", "k-1", time.time() - TTL) is None
    fresh = replace(_key(fingerprint="f2"), resource_sid="SMnew")
    assert await store.create_message(_message(), fresh, TTL) is None  # replaced, created
    assert await _count(store) == 2
    assert await store.get_idempotency_record("AC1", "k-1", time.time() - TTL) == fresh


async def test_expired_keys_are_pruned(store: Store, engine: Engine) -> None:
    now = time.time()
    await store.create_message(_message(), _key("old", created=now - TTL - 1), TTL)
    await store.create_message(_message(), _key("new", created=now), TTL)
    assert await store.prune_idempotency_records(now - TTL) == 1
    assert engine.count("idempotency_keys") == 1
    assert await store.prune_idempotency_records(now - TTL) == 0


async def test_concurrent_claims_of_one_key_create_once(engine: Engine) -> None:
    """Two connections (two processes' stores) race 20 times for one key each time."""
    stores = [await engine.open(), await engine.open()]
    try:
        for round_no in range(20):
            key = f"race-{round_no}"
            results = await asyncio.gather(
                *(
                    store.create_message(_message(), replace(_key(key), fingerprint=str(i)), TTL)
                    for i, store in enumerate(stores * 2)
                )
            )
            created = [r for r in results if r is None]
            assert len(created) == 1, results
            held = {r.fingerprint for r in results if r is not None}
            assert len(held) == 1  # every loser sees the winner's record
        assert await _count(stores[0]) == 20
    finally:
        for store in stores:
            await store.close()


async def test_unfinished_api_messages_oldest_first(store: Store) -> None:
    now = time.time()
    queued = _message("queued", now - 1)
    sending = _message("sending", now - 2)
    for message in (queued, sending, _message("sent", now - 3), _message("failed", now - 4)):
        await store.create_message(message, None, TTL)
    inbound = _message("accepted", now - 5, direction="inbound")
    reply = _message("sending", now - 6, direction="outbound-reply")  # <Sms>: not the API's
    await store.write_journal([], [inbound, reply], [])
    assert [m.sid for m in await store.pending_outbound_messages()] == [sending.sid, queued.sid]
    assert [m.sid for m in await store.accepted_messages()] == [inbound.sid]


@pytest.mark.parametrize("is_sip", [False, True])
async def test_account_number_is_an_exact_lookup(store: Store, is_sip: bool) -> None:
    admin, _ = await store.ensure_default_setup()
    phone = "mms:+12345678" if is_sip else "+15105555555"
    now = time.time()
    number = IncomingNumber(
        new_sid("PN"), admin.sid, admin.organization_sid, phone, "n", is_sip,
        "sip" if is_sip else "local", False, date_created=now, date_updated=now,
    )  # fmt: skip
    await store.bulk_insert_numbers([number])
    found = await store.account_number(admin.sid, phone)
    assert found is not None and found.sid == number.sid
    assert await store.account_number(admin.sid, phone[:-1]) is None  # not a partial match
    assert await store.account_number("AC" + "0" * 32, phone) is None  # another account
