"""The API's queued messages (messaging/queued.py) over real sockets: a raw UDP gateway
(tests/support/sip_gateway.py) or SIPp; the outbox records what is committed.

Statuses and callbacks in order, the request identity committed *before* the request leaves, a
message cut in ``sending`` resent as the same request (Call-ID, CSeq, From tag, Via branch), the
failures before sending, a challenge, the validity period, the queue's bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from outbound_harness import Sending, SippUas, requires_sipp, start_sender

from rcmlrouter import metrics
from rcmlrouter.messaging.queued import QueuedMessages
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import MessageRecord, MessageWire
from support.sip_gateway import Arrival, MessageGateway

pytestmark = pytest.mark.timeout(30)

BODY = "Hello from rcmlrouter"
CALLBACK = "http://app.example.com/status"


def message(to: str = "+15551230000", **changes: object) -> MessageRecord:
    record = MessageRecord(
        new_sid("SM"), "AC" + "1" * 32, "PN" + "2" * 32, "+15105555555", to, BODY,
        "outbound-api", "queued", time.time(), status_callback=CALLBACK,
        status_callback_method="POST", api_version="2010-04-01",
    )  # fmt: skip
    return replace(record, **changes)  # type: ignore[arg-type]


@pytest.fixture
def gateway() -> Iterator[MessageGateway]:
    with MessageGateway() as gw:
        yield gw


@pytest.fixture
async def sending(gateway: MessageGateway) -> AsyncIterator[Sending]:
    started = await start_sender(gateway=gateway.uri, timeout=3.0)
    yield started
    await started.endpoint.stop()


def queued(sending: Sending) -> QueuedMessages:
    return QueuedMessages(sending.sender, sending.outbox)  # type: ignore[arg-type]


def events(sending: Sending) -> list[tuple[int, str]]:
    return [(e.sequence, e.params["MessageStatus"]) for e in sending.outbox.events]


async def test_queued_sending_sent_with_callbacks_in_order(
    sending: Sending, gateway: MessageGateway
) -> None:
    # the gateway checks, when the request arrives, that its identity was committed first
    committed_first: list[bool] = []

    def status(arrival: Arrival) -> int:
        wires = [m.wire for m in sending.outbox.messages if m.status == "sending"]
        ok = any(w is not None and (w.call_id, w.branch) == (arrival.call_id, arrival.branch)
                 for w in wires)  # fmt: skip
        committed_first.append(ok)
        return 202

    gateway.status = status
    final = await queued(sending).send(message())
    assert final.status == "sent" and final.error_code is None
    assert committed_first == [True]
    assert sending.outbox.statuses(final.sid) == ["sending", "sent"]
    assert events(sending) == [(0, "sending"), (1, "sent")]
    first = sending.outbox.events[0].params
    assert first["SmsStatus"] == "sending" and first["ApiVersion"] == "2010-04-01"
    assert first["Direction"] == "outbound-api" and first["SmsSid"] == final.sid
    ((key, arrivals),) = gateway.messages().items()
    wire = sending.outbox.messages[0].wire
    assert wire is not None and key == (wire.call_id, f"{wire.cseq} MESSAGE")
    assert (arrivals[0].from_tag, arrivals[0].branch, arrivals[0].body) == (
        wire.from_tag, wire.branch, BODY
    )  # fmt: skip
    assert not sending.notifications.items


async def test_a_message_cut_while_sending_is_resent_as_the_same_request(
    sending: Sending, gateway: MessageGateway
) -> None:
    wire = MessageWire(
        "0123456789abcdef@rcmlrouter", 1, "c0ffee", "sip:+15105555555@127.0.0.1",
        "z9hG4bKstored0000000001",
    )  # fmt: skip
    final = await queued(sending).send(message(status="sending", wire=wire))
    assert final.status == "sent"
    ((arrival,),) = gateway.messages().values()
    assert (arrival.call_id, arrival.cseq, arrival.from_tag, arrival.branch) == (
        wire.call_id, "1 MESSAGE", wire.from_tag, wire.branch
    )  # fmt: skip
    # its "sending" callback was committed before the crash: only the final one now
    assert events(sending) == [(1, "sent")]
    assert sending.outbox.messages[-1].wire == wire


@pytest.mark.parametrize(("status", "first_time", "resent"), [(482, "failed", "sent")])
async def test_482_to_a_resend_means_the_gateway_has_the_original(
    sending: Sending, gateway: MessageGateway, status: int, first_time: str, resent: str
) -> None:
    gateway.status = status
    final = await queued(sending).send(message())
    assert (final.status, final.error_code) == (first_time, 30008)
    wire = MessageWire("merged@rcmlrouter", 1, "abc", "sip:+15105555555@127.0.0.1", "z9hG4bKm")
    again = await queued(sending).send(message(status="sending", wire=wire))
    assert (again.status, again.error_code) == (resent, None)


async def test_a_refusal_of_the_gateway_fails_after_sending(
    sending: Sending, gateway: MessageGateway
) -> None:
    gateway.status = 488
    final = await queued(sending).send(message())
    assert (final.status, final.error_code) == ("failed", 30006)
    assert events(sending) == [(0, "sending"), (1, "failed")]
    assert sending.outbox.events[1].params["ErrorCode"] == "30006"
    assert [n.error_code for n in sending.notifications.items] == [30006]


async def test_what_cannot_be_sent_fails_with_one_callback() -> None:
    started = await start_sender()  # no gateway
    try:
        final = await queued(started).send(message())
        assert (final.status, final.error_code) == ("failed", 21612)
        assert started.outbox.statuses(final.sid) == ["failed"]
        assert events(started) == [(0, "failed")]
    finally:
        await started.endpoint.stop()


async def test_a_message_queued_past_the_validity_period_is_not_sent(
    sending: Sending, gateway: MessageGateway
) -> None:
    old = message(date_created=time.time() - 36_001)
    final = await queued(sending).send(old)
    assert (final.status, final.error_code) == ("failed", 30036)
    assert events(sending) == [(0, "failed")]
    assert gateway.arrivals() == []


async def test_no_callback_url_no_events(sending: Sending) -> None:
    final = await queued(sending).send(message(status_callback=None))
    assert final.status == "sent" and sending.outbox.events == []


async def test_the_workers_send_what_is_submitted_and_adopted(
    sending: Sending, gateway: MessageGateway
) -> None:
    sender = QueuedMessages(sending.sender, sending.outbox, workers=4, max_queued=3)  # type: ignore[arg-type]
    records = [message(body=f"m{i}") for i in range(3)]
    sender.adopt(records[:2])
    sender.submit(records[2])
    assert sender.full()  # three waiting: the API answers 429
    sender.start()
    assert len(await asyncio.to_thread(gateway.wait_for, 3)) == 3  # the loop keeps sending
    await sender.drain(5)
    assert {a.body for a in gateway.arrivals()} == {"m0", "m1", "m2"}
    assert sender.full()  # drained: takes no more
    assert {m.status for m in sending.outbox.messages if m.status != "sending"} == {"sent"}


@requires_sipp
async def test_a_challenge_is_answered_and_its_identity_committed_too(tmp_path: Path) -> None:
    async with SippUas("uas_message_401_verify.xml", tmp_path) as uas:
        sending = await start_sender(
            gateway=f"sip:127.0.0.1:{uas.port}", username="smsuser", password="smspass"
        )
        try:
            final = await queued(sending).send(message())
        finally:
            await sending.endpoint.stop()
        code, logs = await uas.finish()
    assert code == 0, logs
    assert final.status == "sent"
    wires = [m.wire for m in sending.outbox.messages if m.status == "sending"]
    assert [w.cseq for w in wires if w is not None] == [1, 2]
    first, second = wires
    assert first is not None and second is not None
    assert second.call_id == first.call_id and second.branch != first.branch
    assert [name for name, _ in second.headers] == ["Authorization"]
    assert events(sending) == [(0, "sending"), (1, "sent")]  # one "sending" only


async def test_metrics_count_final_statuses_and_the_backlog(
    sending: Sending, gateway: MessageGateway
) -> None:
    sent = metrics.API_MESSAGES_TOTAL.labels("sent")
    before = sent._value.get()
    sender = queued(sending)
    sender.submit(message())
    assert metrics.REGISTRY.get_sample_value("rcmlrouter_api_messages_waiting") == 1
    sender.start()
    assert len(await asyncio.to_thread(gateway.wait_for, 1)) == 1  # the loop keeps sending
    await sender.drain(5)
    assert sent._value.get() == before + 1
    assert metrics.REGISTRY.get_sample_value("rcmlrouter_api_messages_waiting") == 0
