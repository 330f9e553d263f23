"""One conference: who is in it, whether it has started, what each participant should hear.

Decisions (Twilio's unless noted):

- The conference **starts** when two or more participants are in it and one of them has
  ``startConferenceOnEnter`` (default true); until then everyone hears their ``waitUrl``.
  Once started it stays started while anyone is in it (a last one hears silence).
- It **ends** when its last participant leaves, when a participant with
  ``endConferenceOnExit`` leaves, or when the API sets ``Status=completed``; everyone left is
  let go and their calls go on with their next verb (``<Dial action>`` first, if any).
- **Mute**: not heard, still hears. **Hold**: neither hears nor is heard, and hears the hold
  RCML instead. A **coach** is heard only by the participant it coaches (and hears everyone).
- **Beep** (``true``, ``onEnter``, ``onExit``, ``false``): a short tone to the others when a
  participant enters / leaves (rising 880 Hz on enter, 440 Hz on exit, 0.25 s).
- ``maxParticipants`` (at most 250) is the first participant's; one more is refused.
- ``record="record-from-start"`` (the first participant's): the room's mix from the moment it
  starts to its end (silence while nobody is mixed), one Recording resource.

Modes are recomputed on every change (:meth:`Room.settle`): a participant in ``MIX`` lends its
RTP session to the mixer (``engine.py``); every other mode gives it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from rcmlrouter.conference.engine import MixEngine
from rcmlrouter.conference.events import ConferenceEvents
from rcmlrouter.conference.mixer import FRAME, Frames
from rcmlrouter.conference.participant import Mode, Participant
from rcmlrouter.conference.recording import MixRecording
from rcmlrouter.errors import RcmlRouterError
from rcmlrouter.media.audio import tone

MAX_PARTICIPANTS: Final = 250
_ENTER_BEEP: Final = tone(880.0, 0.25, amplitude=0.25).pcm.astype(np.int32)
_EXIT_BEEP: Final = tone(440.0, 0.25, amplitude=0.25).pcm.astype(np.int32)


class ConferenceFullError(RcmlRouterError):
    """``maxParticipants`` are in the room already."""


@dataclass(frozen=True, slots=True)
class RoomOptions:
    """What the first participant's ``<Conference>`` sets for the room."""

    max_participants: int = MAX_PARTICIPANTS
    record: bool = False


class Room:
    """One conference on this node."""

    def __init__(
        self,
        events: ConferenceEvents,
        engine: MixEngine,
        options: RoomOptions,
        on_end: Callable[[Room], None],
    ) -> None:
        self.events = events
        self.engine = engine
        self.options = options
        self.on_end = on_end
        self.participants: dict[str, Participant] = {}
        self.started = False
        self.ended = False
        self.record: Callable[[], MixRecording] | None = None  # starts the recording
        self.recording: MixRecording | None = None
        self._in_engine = False
        self._beep: npt.NDArray[np.int32] | None = None
        self._beep_at = 0

    @property
    def sid(self) -> str:
        return self.events.record.sid

    @property
    def name(self) -> str:
        return self.events.record.friendly_name

    # -- membership -----------------------------------------------------------------------------

    def join(self, participant: Participant) -> None:
        """Raises ConferenceFullError."""
        if len(self.participants) >= self.options.max_participants:
            raise ConferenceFullError(f"conference {self.name} is full")
        others = bool(self.participants)
        self.participants[participant.call_sid] = participant
        self.events.save([participant])
        self.events.emit("join", "participant-join", participant)
        if others and participant.settings.beep_on_enter:
            self._start_beep(_ENTER_BEEP)
        self.settle()

    def leave(self, call_sid: str, reason: str = "left") -> None:
        """A participant leaves (hung up, kicked, its call ended otherwise)."""
        participant = self.participants.pop(call_sid, None)
        if participant is None or self.ended:
            return
        self._let_go(participant, reason)
        if participant.settings.end_conference_on_exit:
            self.end("participant-with-end-conference-on-exit-left", call_sid)
        elif not self.participants:
            self.end("last-participant-left", call_sid)
        else:
            if participant.settings.beep_on_exit:
                self._start_beep(_EXIT_BEEP)
            self.settle()

    def _let_go(self, participant: Participant, reason: str) -> None:
        participant.session.return_clock()
        participant.leave(reason)
        self.events.save([participant])
        self.events.emit("leave", "participant-leave", participant)

    def end(self, reason: str, call_sid: str | None = None) -> None:
        """The conference is over: everyone still in it leaves, then the end event."""
        if self.ended:
            return
        self.ended = True
        for participant in list(self.participants.values()):
            self.participants.pop(participant.call_sid)
            self._let_go(participant, "conference-ended")
        self._leave_engine()
        if self.recording is not None:
            self.recording.finish()
        self.events.update(status="completed", reason_ended=reason, call_sid_ending=call_sid)
        extra = {"ReasonConferenceEnded": reason}
        if call_sid:
            extra["CallSidEndingConference"] = call_sid
        self.events.emit("end", "conference-end", None, **extra)
        self.on_end(self)

    # -- control (RCML attributes, the API) -----------------------------------------------------

    def mute(self, call_sid: str, muted: bool) -> Participant:
        """Raises KeyError for a call not in the room."""
        participant = self.participants[call_sid]
        if participant.muted != muted:
            participant.muted = muted
            participant.updated_at = time.time()
            self.events.save([participant])
            name = "participant-mute" if muted else "participant-unmute"
            self.events.emit("mute", name, participant)
        return participant

    def hold(
        self, call_sid: str, hold: bool, url: str | None = None, method: str = "GET"
    ) -> Participant:
        participant = self.participants[call_sid]
        if url is not None:
            participant.hold_url, participant.hold_method = url, method
        if participant.hold != hold:
            participant.hold = hold
            participant.updated_at = time.time()
            self.events.save([participant])
            name = "participant-hold" if hold else "participant-unhold"
            self.events.emit("hold", name, participant)
            self.settle()
        elif url is not None:
            participant.signal()  # a new hold URL while held: play that one
        return participant

    # -- modes ----------------------------------------------------------------------------------

    def settle(self) -> None:
        """Recompute whether the room started and what everyone hears; the mixer follows."""
        members = list(self.participants.values())
        starters = any(p.settings.start_conference_on_enter for p in members)
        if not self.started and len(members) >= 2 and starters:
            self.started = True
            self.events.update(status="in-progress")
            self.events.emit("start", "conference-start")
            if self.record is not None:  # record-from-start: from the moment it starts
                self.recording = self.record()
        active = [p for p in members if not p.hold]
        for participant in members:
            participant.set_mode(self._mode(participant, len(active)))
        mixing = [p for p in members if p.mode is Mode.MIX]
        for participant in members:
            if participant.mode is Mode.MIX:
                participant.session.lend_clock()
            else:
                participant.session.return_clock()
        if mixing or (self.recording is not None and members):  # a recording keeps time
            self._in_engine = True
            self.engine.add(self)
        else:
            self._leave_engine()

    def _mode(self, participant: Participant, active: int) -> Mode:
        if participant.hold:
            return Mode.HOLD
        if not self.started:
            return Mode.WAIT
        return Mode.MIX if active >= 2 else Mode.ALONE

    def _leave_engine(self) -> None:
        if self._in_engine:
            self._in_engine = False
            self.engine.remove(self)

    # -- what the mixer asks (engine.MixedRoom) --------------------------------------------------

    def mixed(self) -> Sequence[Participant]:
        return [p for p in self.participants.values() if p.mode is Mode.MIX]

    def announcement(self) -> npt.NDArray[np.int32] | None:
        beep = self._beep
        if beep is None:
            return None
        frame = beep[self._beep_at : self._beep_at + FRAME]
        self._beep_at += FRAME
        if self._beep_at >= len(beep):
            self._beep = None
        if len(frame) < FRAME:
            frame = np.pad(frame, (0, FRAME - len(frame)))
        return frame

    def recorded(self, frame: Frames) -> None:
        if self.recording is not None:
            self.recording.feed(np.clip(frame, -32768, 32767).astype("<i2").tobytes())

    def _start_beep(self, beep: npt.NDArray[np.int32]) -> None:
        self._beep, self._beep_at = beep, 0
