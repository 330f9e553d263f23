"""Calls a crash left unfinished: closed at the next start, their owed callbacks sent."""

from __future__ import annotations

import dataclasses
import time

import structlog

from rcmlrouter.errors import NotFoundError
from rcmlrouter.services import Services, rfc2822
from rcmlrouter.store.base import API_VERSION, CallRecord

log = structlog.get_logger(__name__)


async def finish_interrupted_calls(services: Services) -> int:
    """Close the calls a crash left unfinished; send the COMPLETED callbacks they still owe.

    Run at start, before SIP listens. An answered call ends "completed" (its duration runs to
    this restart, the first moment the end is known), an unanswered one "failed".
    """
    store = services.directory.store
    interrupted = await store.unfinished_calls()
    now = time.time()
    for record in interrupted:
        answered = record.answer_time is not None
        status = "completed" if answered else "failed"
        duration = int(now - record.answer_time) if record.answer_time is not None else 0
        await _owed_completed(services, record, status, duration, now)
        services.call_records.add(
            dataclasses.replace(
                record, status=status, end_time=now, duration=float(duration),
                sip_status=record.sip_status if answered else 500,
            )
        )  # fmt: skip
    if interrupted:
        log.warning("calls.interrupted", count=len(interrupted))
    return len(interrupted)


async def _owed_completed(
    services: Services, record: CallRecord, status: str, duration: int, now: float
) -> None:
    if record.number_sid is None:
        return
    try:
        number = await services.directory.number(record.number_sid)
    except NotFoundError:
        return
    if not number.status_callback:
        return
    params = {
        "CallSid": record.sid, "AccountSid": record.account_sid, "From": record.from_,
        "To": record.to, "CallStatus": status, "ApiVersion": API_VERSION,
        "Direction": record.direction, "CallTimestamp": rfc2822(record.start_time),
        "Timestamp": rfc2822(now), "CallDuration": str(duration),
    }  # fmt: skip
    if record.answer_time is None:
        params["SipResponseCode"] = "500"
    sequence = 2 if record.answer_time is not None else 1
    params["SequenceNumber"] = str(sequence)
    services.outbox.enqueue(
        record.sid, record.account_sid, sequence, number.status_callback,
        number.status_callback_method, params,
    )  # fmt: skip
