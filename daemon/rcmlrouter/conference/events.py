"""What a conference leaves behind: its rows and its ``statusCallback`` events.

Events go through the durable outbox (``callbacks.py``) keyed by the conference sid, so they
are delivered in the order they happened, numbered ``SequenceNumber`` 0, 1, 2…, retried, and
sent after a restart. The conference's callback is the first participant's ``statusCallback``
(Twilio: the attributes of whoever creates the conference); ``statusCallbackEvent`` picks among
``start end join leave mute hold`` (default ``start end``). Rows (the conference and its
participants) are upserted through a group-committing writer as they change.

Parameters (Twilio's): ``ConferenceSid, FriendlyName, AccountSid, StatusCallbackEvent``
(``conference-start``, ``conference-end``, ``participant-join``, ``participant-leave``,
``participant-mute`` / ``-unmute``, ``participant-hold`` / ``-unhold``), ``Timestamp``,
``SequenceNumber``; for a participant ``CallSid, Muted, Hold, Coaching, EndConferenceOnExit,
StartConferenceOnEnter`` (and ``CallSidToCoach``, ``ParticipantLabel``); at the end
``ReasonConferenceEnded`` and ``CallSidEndingConference``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.conference.participant import Participant
from rcmlrouter.dates import rfc2822
from rcmlrouter.journal import BatchWriter
from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord

EVENTS: Final = ("start", "end", "join", "leave", "mute", "hold")
DEFAULT_EVENTS: Final = ("start", "end")

Rows = tuple[Sequence[ConferenceRecord], Sequence[ParticipantRecord]]


@dataclass(frozen=True, slots=True)
class StatusCallback:
    url: str
    method: str = "POST"
    events: tuple[str, ...] = DEFAULT_EVENTS


def _flag(value: bool) -> str:
    return "true" if value else "false"


def participant_record(conference: ConferenceRecord, p: Participant) -> ParticipantRecord:
    settings = p.settings
    return ParticipantRecord(
        conference.sid,
        p.call_sid,
        conference.account_sid,
        p.status,
        p.muted,
        p.hold,
        settings.start_conference_on_enter,
        settings.end_conference_on_exit,
        p.joined_at,
        p.updated_at,
        p.coaching is not None,
        p.coaching,
        settings.label,
    )


def _participant_params(p: ParticipantRecord) -> dict[str, str]:
    params = {
        "CallSid": p.call_sid,
        "Muted": _flag(p.muted),
        "Hold": _flag(p.hold),
        "Coaching": _flag(p.coaching),
        "EndConferenceOnExit": _flag(p.end_conference_on_exit),
        "StartConferenceOnEnter": _flag(p.start_conference_on_enter),
    }
    if p.call_sid_to_coach:
        params["CallSidToCoach"] = p.call_sid_to_coach
    if p.label:
        params["ParticipantLabel"] = p.label
    return params


class ConferenceEvents:
    """One conference's record, its participants' records and its callbacks."""

    def __init__(
        self,
        record: ConferenceRecord,
        outbox: CallbackOutbox,
        rows: BatchWriter[Rows],
        callback: StatusCallback | None,
    ) -> None:
        self.record = record
        self.outbox = outbox
        self.rows = rows
        self.callback = callback
        self.sequence = record.callback_sequence

    def update(self, **changes: object) -> None:
        """Change the conference's row (status, reason…) and write it."""
        self.record = replace(self.record, date_updated=time.time(), **changes)  # type: ignore[arg-type]
        self.rows.add(([self.record], ()))

    def save(self, participants: Sequence[Participant]) -> None:
        """Write these participants' rows as they are now."""
        self.rows.add(((), [participant_record(self.record, p) for p in participants]))

    def emit(
        self,
        event: str,
        name: str,
        participant: Participant | ParticipantRecord | None = None,
        **extra: str,
    ) -> None:
        """The ``event`` (start, end, join…) as ``StatusCallbackEvent`` ``name``, if asked for."""
        callback = self.callback
        if callback is None or event not in callback.events:
            return
        record = self.record
        params = {
            "ConferenceSid": record.sid,
            "FriendlyName": record.friendly_name,
            "AccountSid": record.account_sid,
            "StatusCallbackEvent": name,
            "Timestamp": rfc2822(time.time()),
            "SequenceNumber": str(self.sequence),
        }
        if participant is not None:
            if isinstance(participant, Participant):
                participant = participant_record(record, participant)
            params.update(_participant_params(participant))
        params.update(extra)
        event_row = self.outbox.event(
            record.sid, record.account_sid, self.sequence, callback.url, callback.method, params
        )
        self.sequence += 1
        self.outbox.commit(events=[event_row])
        self.update(callback_sequence=self.sequence)
