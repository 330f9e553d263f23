"""The rows of conferences and their participants (``<Dial><Conference>``, migration 0020).

A conference is one room on one node (``node_id``): while its status is ``init`` or
``in-progress`` no other row of the same account has its friendly name (a unique index on the
active rows), so the same name never becomes two rooms, on one node or many.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE_STATUSES = ("init", "in-progress")


@dataclass(frozen=True, slots=True)
class ConferenceRecord:
    sid: str
    account_sid: str
    friendly_name: str
    status: str  # init, in-progress, completed
    node_id: str
    date_created: float
    date_updated: float
    reason_ended: str | None = None  # Twilio's reason_conference_ended
    call_sid_ending: str | None = None
    recording_sid: str | None = None
    status_callback: str | None = None  # the first participant's, kept for a restart's events
    status_callback_method: str = "POST"
    status_callback_event: str = ""  # space-separated
    callback_sequence: int = 0  # the next SequenceNumber


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    conference_sid: str
    call_sid: str
    account_sid: str
    status: str  # connected, completed
    muted: bool
    hold: bool
    start_conference_on_enter: bool
    end_conference_on_exit: bool
    date_created: float
    date_updated: float
    coaching: bool = False
    call_sid_to_coach: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ConferenceQuery:
    """A conference list: ``Status``, ``FriendlyName`` and the ``DateCreated`` day bounds."""

    account_sid: str
    status: str | None = None
    friendly_name: str | None = None
    created_from: float | None = None
    created_before: float | None = None
