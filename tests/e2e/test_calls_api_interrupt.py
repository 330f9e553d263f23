"""The contract with live call control (``POST Calls/{CA}``): an API call is one task of the
supervisor from its 201 on, and ``supervisor.live_call(sid).interrupt(cause)`` ends it as the
cause says in every state. The daemon runs in this process (``rcmlrouter.app.Daemon``), the far
ends are a raw SIP callee (answers at once) and a SIPp UAS that rings until CANCEL.

- ``canceled`` while queued: never dialled, ``canceled``;
- ``canceled`` while ringing: CANCEL, ``canceled``;
- ``api-hangup`` answered: BYE, ``completed``; ``api-hangup`` while queued: ``canceled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rcmlrouter.app import Daemon
from rcmlrouter.assembly.stores import open_store
from rcmlrouter.config import load_config
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord, OriginateRequest
from support.sip_callee import SipCallee
from support.sipp_uas import SippUas

pytestmark = pytest.mark.e2e
SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"
FINAL = ("completed", "canceled", "failed", "busy", "no-answer")


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, SipCallee]]:
    with SipCallee() as callee:
        config = load_config(
            None,
            {
                "RCMLROUTER_API_LISTEN": "127.0.0.1:0",
                "RCMLROUTER_SIP_LISTEN": "udp:127.0.0.1:0",
                "RCMLROUTER_STORE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
                "RCMLROUTER_DATA_DIR": str(tmp_path / "data"),
                "RCMLROUTER_LOG_LEVEL": "warning",
                "RCMLROUTER_OUTBOUND_CPS": "0.5",
                "RCMLROUTER_SIP_DRAIN_TIMEOUT": "1",
                "RCMLROUTER_TRUNKS_CALLEE_URI": f"sip:127.0.0.1:{callee.port}",
            },
        )
        process = Daemon(config)
        await process.start()
        try:
            yield process, callee
        finally:
            await process.stop()


async def place(
    daemon: Daemon, to: str, twiml: str = '<Response><Pause length="30"/></Response>'
) -> str:
    """Queue an API call as POST Calls does (store first, then the queue)."""
    assert daemon.store is not None and daemon.originate is not None
    request = OriginateRequest(to=to, from_="+15105555555", twiml=twiml)
    record = CallRecord(
        new_sid("CA"), daemon.services.admin_account_sid if daemon.services else "", None,
        request.from_, to, "outbound-api", "queued", None, time.time(), None, None, None, None,
        originate=request,
    )  # fmt: skip
    assert await daemon.store.create_call(record, None, 0) is None
    daemon.originate.submit(record)
    return record.sid


async def settled(daemon: Daemon, sid: str, timeout: float = 10.0) -> CallRecord:
    assert daemon.store is not None
    deadline = time.monotonic() + timeout
    while True:
        record = await daemon.store.get_call(sid)
        if record.status in FINAL and record.end_time is not None:
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)


async def wait_status(daemon: Daemon, sid: str, status: str, timeout: float = 5.0) -> None:
    assert daemon.store is not None
    deadline = time.monotonic() + timeout
    while (await daemon.store.get_call(sid)).status != status:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_canceled_while_queued_is_never_dialled_and_api_hangup_answered_is_completed(
    daemon: tuple[Daemon, SipCallee],
) -> None:
    process, callee = daemon
    assert process.supervisor is not None
    first = await place(process, "+15550004001")  # dialled at once (the account's first slot)
    second = await place(process, "+15550004002")  # waits 2 s for its slot (0.5 cps)
    third = await place(process, "+15550004003")  # waits 4 s
    await wait_status(process, first, "in-progress")
    queued = process.supervisor.live_call(second)
    assert queued is not None and not queued.inbound
    queued.interrupt("canceled")
    hung_up = process.supervisor.live_call(third)
    assert hung_up is not None
    hung_up.interrupt("api-hangup")  # before the answer: as canceled
    answered = process.supervisor.live_call(first)
    assert answered is not None
    answered.interrupt("api-hangup")
    records = [await settled(process, sid) for sid in (first, second, third)]
    assert [r.status for r in records] == ["completed", "canceled", "canceled"]
    assert records[0].answer_time is not None and records[1].sip_status is None
    assert all(r.originate is None for r in records)  # nothing left to dial after a restart
    await asyncio.sleep(0.2)
    assert set(callee.calls()) == {"+15550004001"}  # the canceled ones never reached it
    assert process.supervisor.live_call(first) is None


async def test_canceled_while_ringing_sends_cancel(
    daemon: tuple[Daemon, SipCallee], tmp_path: Path
) -> None:
    process, _ = daemon
    assert process.supervisor is not None
    async with SippUas(SIP_SCENARIOS / "uas_ring_cancel.xml", tmp_path) as uas:
        sid = await place(process, uas.uri)
        await wait_status(process, sid, "ringing")
        live = process.supervisor.live_call(sid)
        assert live is not None
        live.interrupt("canceled")
        record = await settled(process, sid)
        code, logs = await uas.finish()
        assert code == 0, logs[-2000:]  # SIPp got the CANCEL (and ACKed 487)
    assert record.status == "canceled" and record.sip_status == 487


async def test_drain_leaves_waiting_calls_queued_for_the_next_start(
    daemon: tuple[Daemon, SipCallee],
) -> None:
    process, _ = daemon
    await place(process, "+15550005001")  # dialled at once
    waiting = await place(process, "+15550005002")
    await asyncio.sleep(0.2)
    assert process.originate is not None and process.originate.waiting == 1
    await process.stop()
    assert process.store is not None
    # the store is closed by stop(): read the file again
    store = await open_store(process.config)
    try:
        record = await store.get_call(waiting)
    finally:
        await store.close()
    assert record.status == "queued" and record.originate is not None and record.end_time is None
    await process.start()  # the fixture stops it again
    await wait_status(process, waiting, "in-progress")  # dialled by the new run
