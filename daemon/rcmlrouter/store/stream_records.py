"""The row of a media stream (``<Connect><Stream>``, ``<Start><Stream>``, the REST API's
``Calls/{CA}/Streams``; migration 0022): what a call's page lists.

The call's node writes it as the stream goes (``calls/call_streams.py``, through a batch
writer): ``in-progress`` when opened, then ``stopped``, or ``failed`` with Twilio's error code
and message (a refused stream is a ``failed`` row from the start). A row a crash left
``in-progress`` is ``stopped`` with its call at the restart or take-over (``end_streams``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StreamStartedBy = Literal["connect", "start", "api"]
"""``<Connect><Stream>``, ``<Start><Stream>``, ``POST Calls/{CA}/Streams``."""

StreamStatus = Literal["in-progress", "stopped", "failed"]


@dataclass(frozen=True, slots=True)
class StreamRecord:
    sid: str  # MZ…
    account_sid: str
    call_sid: str
    name: str  # the stream's name, its sid when it has none
    url: str
    track: str  # inbound_track, outbound_track, both_tracks
    started_by: str  # StreamStartedBy
    status: str  # StreamStatus
    error_code: int | None
    error_message: str | None
    date_created: float
    date_updated: float  # when it stopped or failed, once it has

    @property
    def date_ended(self) -> float | None:
        return None if self.status == "in-progress" else self.date_updated
