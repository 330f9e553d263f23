"""``calls.originate``: the request of a queued API call survives the store as it was asked."""

from __future__ import annotations

import dataclasses
import time

from rcmlrouter.store.base import Store
from rcmlrouter.store.records import CallRecord, OriginateRequest

REQUEST = OriginateRequest(
    "sip:bob@127.0.0.1:5070",
    "+15105555555",
    twiml="<Response><Say>hi</Say></Response>",
    status_callback="http://127.0.0.1:9/s",
    status_callback_events=("initiated", "completed"),
    timeout=15,
    send_digits="1w2",
    sip_auth_username="u",
    sip_auth_password="p",
    api_version="2010-04-01",
)


def test_the_json_round_trip_keeps_every_field_and_ignores_unknown_ones() -> None:
    assert OriginateRequest.from_json(REQUEST.to_json()) == REQUEST
    extended = REQUEST.to_json()[:-1] + ', "from_a_newer_version": 1}'
    assert OriginateRequest.from_json(extended) == REQUEST


async def test_a_queued_call_is_unfinished_with_its_request_and_a_checkpoint_clears_it(
    store: Store,
) -> None:
    record = CallRecord(
        "CA" + "1" * 32, "AC1", None, REQUEST.from_, REQUEST.to, "outbound-api", "queued",
        None, time.time(), None, None, None, None, originate=REQUEST,
    )  # fmt: skip
    assert await store.create_call(record, None, 86400) is None
    [found] = await store.unfinished_calls()
    assert found.originate == REQUEST and found.status == "queued"
    initiated = dataclasses.replace(found, status="initiated", originate=None)
    await store.write_journal([initiated], [], [])
    [found] = await store.unfinished_calls()
    assert found.originate is None and found.status == "initiated"
