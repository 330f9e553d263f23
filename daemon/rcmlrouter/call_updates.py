"""What the API asks of a live call (or a live conference), and how it came out: the commands.

Values shared by the three parts of live call control, none of which imports another: the API
validates a request into a command (:class:`CallUpdate`: ``POST Calls/{CA}``,
``api/call_update.py``; :class:`StreamStart` / :class:`StreamStop`: ``POST Calls/{CA}/Streams``,
``api/streams.py``; :class:`ConferenceEnd`, :class:`ParticipantUpdate`,
:class:`ParticipantKick`: ``Conferences/{CF}[/Participants/{CA}]``, ``api/conferences.py``); the
node that runs the call (or the room) applies it (``calls/live_control.py``); between two nodes
it travels as JSON, named by its :data:`CallCommand` kind (``cluster/call_commands.py``:
PostgreSQL NOTIFY with a reply). :class:`CallControl` is the one seam the API talks to, for every
command; the composition root wires it (``assembly/call_control.py``).
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, ClassVar, Final, Protocol

# How an update came out (UpdateResult.outcome)
APPLIED: Final = "applied"  # done (a hang-up: the call has ended and its record is durable)
IGNORED: Final = "ignored"  # Status=canceled on an answered call: Twilio leaves it alone
ENDED: Final = "ended"  # the call is not running (any more): 21220
UNREACHABLE: Final = "unreachable"  # the node that runs the call did not answer in time
INVALID: Final = "invalid"  # the owning node could not use it (its Twiml did not parse there)
UNSUPPORTED: Final = "unsupported"  # this kind of call cannot do it (its callbacks cannot move)
REFUSED: Final = "refused"  # the call refused a stream (UpdateResult.code: Twilio's error code)
NO_STREAM: Final = "no-stream"  # the call runs, but has no such stream to stop
UNKNOWN: Final = "unknown"  # the owner does not know this kind of command (older code)

# Kinds of command (the ``c`` of a request on the wire)
UPDATE: Final = "update"
STREAM_START: Final = "stream-start"
STREAM_STOP: Final = "stream-stop"
CONFERENCE_END: Final = "conference-end"
PARTICIPANT_UPDATE: Final = "participant-update"
PARTICIPANT_KICK: Final = "participant-kick"

CANCELED: Final = "canceled"
COMPLETED: Final = "completed"
API_HANGUP: Final = "api-hangup"  # LiveCall.interrupt cause of Status=completed


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """One validated update (kind :data:`UPDATE`). ``url`` or ``twiml`` redirects (``twiml``
    wins when both came); ``status`` ends the call (``completed``) or cancels it while not
    answered (``canceled``); ``status_callback`` (``""``: no more callbacks) sends the remaining
    events elsewhere."""

    status: str | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    base_url: str | None = None  # relative URLs inside ``twiml`` resolve against it
    time_limit: int | None = None  # seconds the call may last from its answer, from now on
    kind: ClassVar[str] = UPDATE

    @property
    def redirects(self) -> bool:
        return self.url is not None or self.twiml is not None

    @property
    def empty(self) -> bool:
        return (
            self.status is None
            and not self.redirects
            and self.status_callback is None
            and self.time_limit is None
        )

    def to_wire(self) -> dict[str, str]:
        """Its fields for a JSON NOTIFY payload (compact: defaults left out, a long ``Twiml``
        deflated: a payload holds at most 8,000 bytes)."""
        fields = {k: v for k, v in asdict(self).items() if v is not None and v != "POST"}
        if self.time_limit is not None:
            fields["time_limit"] = str(self.time_limit)
        twiml = fields.pop("twiml", None)
        if twiml is not None:
            if len(twiml) > 512:
                packed = base64.b64encode(zlib.compress(twiml.encode(), 6)).decode()
                fields["twiml_z"] = packed
            else:
                fields["twiml"] = twiml
        return fields

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> CallUpdate:
        values: dict[str, Any] = {k: str(v) for k, v in fields.items() if k in _FIELDS}
        if "twiml_z" in fields:
            values["twiml"] = zlib.decompress(base64.b64decode(str(fields["twiml_z"]))).decode()
        if "time_limit" in values:
            values["time_limit"] = int(values["time_limit"])
        return cls(**values)


_FIELDS = frozenset(f.name for f in dataclass_fields(CallUpdate))


@dataclass(frozen=True, slots=True)
class StreamStart:
    """``POST Calls/{CA}/Streams``: start a one-way stream (the fields of ``rcml.model.Stream``)
    on the call, if it is ``account_sid``'s."""

    account_sid: str
    url: str
    name: str | None = None
    track: str = "inbound_track"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    parameters: tuple[tuple[str, str], ...] = ()
    kind: ClassVar[str] = STREAM_START

    def to_wire(self) -> dict[str, Any]:
        """Its fields for a JSON payload (defaults left out; parameters as pairs)."""
        fields: dict[str, Any] = {"account_sid": self.account_sid, "url": self.url}
        if self.name is not None:
            fields["name"] = self.name
        if self.track != "inbound_track":
            fields["track"] = self.track
        if self.status_callback is not None:
            fields["status_callback"] = self.status_callback
        if self.status_callback_method != "POST":
            fields["status_callback_method"] = self.status_callback_method
        if self.parameters:
            fields["parameters"] = [list(pair) for pair in self.parameters]
        return fields

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> StreamStart:
        name, callback = fields.get("name"), fields.get("status_callback")
        return cls(
            account_sid=str(fields["account_sid"]),
            url=str(fields["url"]),
            name=None if name is None else str(name),
            track=str(fields.get("track", "inbound_track")),
            status_callback=None if callback is None else str(callback),
            status_callback_method=str(fields.get("status_callback_method", "POST")),
            parameters=tuple((str(n), str(v)) for n, v in fields.get("parameters", ())),
        )


@dataclass(frozen=True, slots=True)
class StreamStop:
    """``POST Calls/{CA}/Streams/{ref}`` with ``Status=stopped``: stop the stream whose sid or
    name is ``ref`` on the call, if it is ``account_sid``'s."""

    account_sid: str
    ref: str
    kind: ClassVar[str] = STREAM_STOP

    def to_wire(self) -> dict[str, Any]:
        return {"account_sid": self.account_sid, "ref": self.ref}

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> StreamStop:
        return cls(account_sid=str(fields["account_sid"]), ref=str(fields["ref"]))


@dataclass(frozen=True, slots=True)
class ConferenceEnd:
    """``POST Conferences/{CF}`` with ``Status=completed`` (the command's sid: the room's)."""

    kind: ClassVar[str] = CONFERENCE_END

    def to_wire(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> ConferenceEnd:
        return cls()


@dataclass(frozen=True, slots=True)
class ParticipantUpdate:
    """``POST Conferences/{CF}/Participants/{CA}``: ``Muted``, ``Hold``, ``HoldUrl``,
    ``HoldMethod`` (None: unchanged; the command's sid: the room's)."""

    call_sid: str
    muted: bool | None = None
    hold: bool | None = None
    hold_url: str | None = None
    hold_method: str = "GET"
    kind: ClassVar[str] = PARTICIPANT_UPDATE

    def to_wire(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        if self.hold_method == "GET":
            del fields["hold_method"]
        return fields

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> ParticipantUpdate:
        muted, hold, hold_url = fields.get("muted"), fields.get("hold"), fields.get("hold_url")
        return cls(
            call_sid=str(fields["call_sid"]),
            muted=None if muted is None else bool(muted),
            hold=None if hold is None else bool(hold),
            hold_url=None if hold_url is None else str(hold_url),
            hold_method=str(fields.get("hold_method", "GET")),
        )


@dataclass(frozen=True, slots=True)
class ParticipantKick:
    """``DELETE Conferences/{CF}/Participants/{CA}`` (the command's sid: the room's)."""

    call_sid: str
    kind: ClassVar[str] = PARTICIPANT_KICK

    def to_wire(self) -> dict[str, Any]:
        return {"call_sid": self.call_sid}

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> ParticipantKick:
        return cls(call_sid=str(fields["call_sid"]))


ConferenceCommand = ConferenceEnd | ParticipantUpdate | ParticipantKick
CallCommand = CallUpdate | StreamStart | StreamStop | ConferenceCommand
COMMAND_KINDS: Final[dict[str, Any]] = {
    UPDATE: CallUpdate,
    STREAM_START: StreamStart,
    STREAM_STOP: StreamStop,
    CONFERENCE_END: ConferenceEnd,
    PARTICIPANT_UPDATE: ParticipantUpdate,
    PARTICIPANT_KICK: ParticipantKick,
}


def command_from_wire(kind: str, fields: dict[str, Any]) -> CallCommand:
    """The command of kind ``kind`` from its wire fields; LookupError for a kind this code does
    not know, ValueError (KeyError, TypeError) for malformed fields."""
    try:
        known = COMMAND_KINDS[kind]
    except KeyError:
        raise LookupError(f"unknown command kind {kind[:40]!r}") from None
    command: CallCommand = known.from_wire(fields)
    return command


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """How a command came out; ``detail`` says why for the log and the error message. A stream
    or conference command applied has ``result`` (the stream's description, as
    ``api/streams.py`` renders it; the conference's or participant's row, as JSON values); one
    refused has ``code`` (Twilio's error code: 21220, 31940, 31941…)."""

    outcome: str
    detail: str = ""
    result: dict[str, Any] | None = None
    code: int | None = None


class CallControl(Protocol):
    """Applies a command to the live call ``call_sid`` wherever it runs (``owner``: the node
    its record names; None on SQLite or when unknown); a conference command to the room
    ``call_sid`` names (a ConferenceSid) on its owner."""

    async def update(
        self, call_sid: str, owner: str | None, update: CallUpdate
    ) -> UpdateResult: ...

    async def command(
        self, call_sid: str, owner: str | None, command: CallCommand
    ) -> UpdateResult: ...
