"""Calls a crash left unfinished: closed at the next start, their owed callbacks sent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

import structlog

from rcmlrouter.calls.call_events import owed_final_event
from rcmlrouter.services import Services
from rcmlrouter.store.base import CallRecord, OutboxEvent

log = structlog.get_logger(__name__)


async def close_interrupted_calls(services: Services, interrupted: Sequence[CallRecord]) -> int:
    """Close ``interrupted`` calls (an earlier run's, or a dead cluster node's); return how many.

    Run at start after the outbox adopted the undelivered events, before SIP listens (or when a
    node takes over a dead one's work). An answered call ends "completed" (its duration runs to
    now, the first moment the end is known), an unanswered one "failed" (SipResponseCode 500).
    The final event goes to the StatusCallback the call was using, at the SequenceNumber after
    its last committed event: both were committed with the call's last checkpoint, in the same
    transaction as its events.
    """
    now = time.time()
    commits = []
    for record in interrupted:
        answered = record.answer_time is not None
        status = "completed" if answered else "failed"
        duration = int(now - record.answer_time) if record.answer_time is not None else 0
        events: list[OutboxEvent] = []
        if record.status_callback:
            events.append(owed_final_event(services.outbox, record, status, duration, now))
        closed = dataclasses.replace(
            record,
            status=status,
            end_time=now,
            duration=float(duration),
            sip_status=record.sip_status if answered else 500,
            next_sequence=record.next_sequence + len(events),
        )
        commits.append(services.outbox.commit(call=closed, events=events))
    if commits:
        await asyncio.gather(*commits)
        log.warning("calls.interrupted", count=len(interrupted))
    return len(interrupted)
