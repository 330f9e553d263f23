"""Calls a crash left unfinished: closed at the next start (or by a surviving cluster node) at
their process's last sign of life, their owed callbacks sent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import structlog

from rcmlrouter.calls.call_events import owed_final_event
from rcmlrouter.services import Services
from rcmlrouter.store.records import CallRecord, OutboxEvent

log = structlog.get_logger(__name__)


async def close_interrupted_calls(
    services: Services,
    interrupted: Sequence[CallRecord],
    last_seen: Mapping[str, float] | None = None,
) -> int:
    """Close ``interrupted`` calls (an earlier run's, or a dead cluster node's); return how many.

    Run at start after the outbox adopted the undelivered events, before SIP listens (or when a
    node takes over a dead one's work). Each call ends at the last sign of life of the process
    that ran it (:func:`interrupted_at`): its heartbeat (``last_seen``, by call sid) or the
    call's last checkpoint, whichever is later, never at the take-over. An answered call ends
    "completed" (its duration runs from the answer to that end), an unanswered one "failed"
    (SipResponseCode 500). The final event goes to the StatusCallback the call was using, at
    the SequenceNumber after its last committed event: both were committed with the call's last
    checkpoint, in the same transaction as its events.
    """
    now = time.time()
    seen = last_seen or {}
    commits = []
    bases: Counter[str] = Counter()
    for record in interrupted:
        end, basis = interrupted_at(record, seen.get(record.sid), now)
        bases[basis] += 1
        answered = record.answer_time is not None
        status = "completed" if answered else "failed"
        duration = int(end - record.answer_time) if record.answer_time is not None else 0
        events: list[OutboxEvent] = []
        if record.status_callback:
            events.append(owed_final_event(services.outbox, record, status, duration, end))
        closed = dataclasses.replace(
            record,
            status=status,
            end_time=end,
            duration=float(duration),
            sip_status=record.sip_status if answered else 500,
            next_sequence=record.next_sequence + len(events),
        )
        commits.append(services.outbox.commit(call=closed, events=events))
    if commits:
        await asyncio.gather(*commits)
        log.warning("calls.interrupted", count=len(interrupted), ended_at=dict(bases))
    return len(interrupted)


def interrupted_at(record: CallRecord, heartbeat: float | None, now: float) -> tuple[float, str]:
    """When an interrupted call ended, and on what evidence: the later of its last checkpoint
    (answer, else start) and its process's last heartbeat, when known; never after ``now``."""
    checkpoint = max(record.start_time, record.answer_time or record.start_time)
    if heartbeat is not None and heartbeat > checkpoint:
        return min(heartbeat, now), "heartbeat"
    return min(checkpoint, now), "checkpoint"
