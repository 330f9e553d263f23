"""RCML verbs as frozen values.

One dataclass per verb, with Twilio's documented defaults. URLs are absolute (the parser resolves
relative ones against the document's URL); methods are upper-case ``"GET"`` or ``"POST"``.
``Say.loop`` / ``Play.loop`` of ``0`` means "repeat until the caller hangs up" (as Twilio).
``Gather.num_digits`` of ``None`` means "no digit limit"; an empty ``finish_on_key`` disables the
finish key. ``None`` for ``action`` means "no action URL": the executor continues with the next
verb (Gather, Record, Dial) or does not post a status (Sms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the call without answering: ``busy`` → 486, anything else → 603."""

    reason: str = "rejected"


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call (answering it first if it is not yet answered)."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Fetch ``url`` and continue with the document it returns."""

    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait ``length`` seconds."""

    length: int = 1


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text`` with text-to-speech ``loop`` times (0 = forever)."""

    text: str
    voice: str = "man"
    language: str = "en"
    loop: int = 1


@dataclass(frozen=True, slots=True)
class Play:
    """Play the audio file at ``url`` ``loop`` times (0 = forever); ``digits`` (DTMF, ``w`` =
    half a second) are sent first. ``url`` is empty when only ``digits`` are given."""

    url: str
    loop: int = 1
    digits: str = ""


GatherChild: TypeAlias = Say | Play | Pause


@dataclass(frozen=True, slots=True)
class Gather:
    """Collect DTMF digits while playing ``children``; post ``Digits`` to ``action``."""

    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout: int = 5
    action: str | None = None
    method: str = "POST"
    children: tuple[GatherChild, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller; post ``RecordingUrl`` and ``RecordingDuration`` to ``action``."""

    max_length: int = 3600
    timeout: int = 5
    finish_on_key: str = "1234567890*#"
    play_beep: bool = True
    action: str | None = None
    method: str = "POST"
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"


DIAL_EVENTS = ("initiated", "ringing", "answered", "completed")


@dataclass(frozen=True, slots=True)
class DialNumber:
    """A phone number dialed through the outbound trunk.

    ``status_callback`` gets the leg's ``status_callback_event`` events (Twilio's default:
    only ``completed``) with ``SequenceNumber``.
    """

    number: str
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] = ("completed",)
    status_callback_method: str = "POST"


@dataclass(frozen=True, slots=True)
class DialSip:
    """A SIP URI (``sip:`` or ``sips:``) dialed directly; ``username``/``password`` answer a
    401/407 challenge of the far end."""

    uri: str
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] = ("completed",)
    status_callback_method: str = "POST"
    username: str | None = None
    password: str | None = None


DialTarget: TypeAlias = DialNumber | DialSip

CONFERENCE_EVENTS = ("start", "end", "join", "leave", "mute", "hold")
CONFERENCE_BEEPS = ("true", "false", "onEnter", "onExit")


@dataclass(frozen=True, slots=True)
class DialConference:
    """``<Conference>NAME</Conference>``: join the room ``name`` (Twilio's attributes).

    ``wait_url`` ``None`` is the default wait sound (a soft tone pattern), ``""`` silence.
    ``status_callback`` (the first participant's is the conference's) gets the
    ``status_callback_event`` events; ``coach`` is the CallSid this participant coaches."""

    name: str
    muted: bool = False
    beep: str = "true"
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    wait_url: str | None = None
    wait_method: str = "POST"
    max_participants: int = 250
    record_from_start: bool = False
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_event: tuple[str, ...] = ("start", "end")
    coach: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Dial:
    """Bridge the call to the first target that answers (targets are rung in parallel)."""

    action: str | None = None
    method: str = "POST"
    timeout: int = 30
    time_limit: int = 14400
    caller_id: str | None = None
    targets: tuple[DialTarget, ...] = ()
    conference: DialConference | None = None
    """Set instead of ``targets``: the caller joins this conference."""


@dataclass(frozen=True, slots=True)
class Sms:
    """Send ``body`` as a SIP MESSAGE; ``to`` / ``from_`` default to the caller / the number.

    Both ``<Sms>`` (Restcomm) and ``<Message>`` (Twilio; text or a ``<Body>`` noun) parse to this.
    ``action`` gets the outcome (``SmsStatus``) and its document replaces the rest of the running
    one; ``status_callback`` gets the final status through the durable outbox.
    """

    to: str | None = None
    from_: str | None = None
    action: str | None = None
    method: str = "POST"
    body: str = ""
    status_callback: str | None = None


STREAM_TRACKS = ("inbound_track", "outbound_track", "both_tracks")


@dataclass(frozen=True, slots=True)
class Stream:
    """A media stream to the WebSocket at ``url`` (``ws://`` or ``wss://``), Twilio's Media
    Streams protocol; ``parameters`` are its ``<Parameter name value/>`` children, in order
    (sent to the agent as ``start.customParameters``). ``track`` applies to ``<Start>`` only:
    ``<Connect>`` streams the caller (inbound) and plays the agent's audio back."""

    url: str
    name: str | None = None
    track: str = "inbound_track"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Connect:
    """Connect the call to a bidirectional stream; the document waits until the socket closes
    (either side) or the call ends, then requests ``action`` or goes on."""

    stream: Stream
    action: str | None = None
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Start:
    """Fork the call's audio to a one-way stream; the document goes on at once."""

    stream: Stream


@dataclass(frozen=True, slots=True)
class Stop:
    """End the stream started under ``name`` (a ``<Start><Stream name>``)."""

    name: str


Verb: TypeAlias = (
    Reject
    | Hangup
    | Redirect
    | Pause
    | Say
    | Play
    | Gather
    | Record
    | Dial
    | Sms
    | Connect
    | Start
    | Stop
)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed ``<Response>``: its verbs in document order."""

    verbs: tuple[Verb, ...] = ()
