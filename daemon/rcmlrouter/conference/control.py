"""What the API asks of the conferences of this node (a leaf: the API imports it, the
registry implements it). Each answer is the row as it is now, or None when the conference (or
the participant) is not live on this node."""

from __future__ import annotations

from typing import Protocol

from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord


class ConferenceControl(Protocol):
    @property
    def node_id(self) -> str:
        """This node (the owner the store records for its rooms)."""
        ...

    def end(self, conference_sid: str) -> ConferenceRecord | None:
        """End the conference (``Status=completed``); everyone goes on with their next verb."""
        ...

    def update_participant(
        self,
        conference_sid: str,
        call_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
        hold_url: str | None = None,
        hold_method: str = "GET",
    ) -> ParticipantRecord | None: ...

    def kick(self, conference_sid: str, call_sid: str) -> bool:
        """Take the participant out; its call goes on with its next verb."""
        ...
