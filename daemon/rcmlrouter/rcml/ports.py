"""The executor's ports: what running an RCML document needs from the outside, and nothing else.

A leaf: it imports only the document model. The call wing (``calls/``) implements
:class:`CallLeg` (and its :class:`MediaLeg` half) and :class:`DocumentSource` for each kind of
call; messaging implements :class:`MessageSender` and runs SMS documents against the same
:class:`SmsOrigin` / :class:`SmsResult` values. Neither needs the executor itself to do so.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final, Protocol

from rcmlrouter.rcml.model import Dial, Document, GatherChild, Record, Sms, Stream

MAX_REDIRECTS: Final = 20
"""Further documents (``<Redirect>``, ``action``) one call or message may fetch (SPEC §3.2)."""


@dataclass(frozen=True, slots=True)
class RecordingOutcome:
    """What a ``<Record>`` produced: ``params`` for its ``action``; ``caller_hung_up`` when the
    recording ended because the call did (the leg has delivered the action request then)."""

    params: Mapping[str, str] = field(default_factory=dict)
    caller_hung_up: bool = False


class MediaLeg(Protocol):
    """The media operations of a call (a leg implements them on its RTP session)."""

    async def play(self, verb: GatherChild, *, interruptible: bool = False) -> str | None:
        """Play ``verb``'s audio (a ``Play`` URL, ``Say`` speech, ``Pause`` silence) to the end.

        With ``interruptible`` stop at the first key press and return it (it stays buffered for
        :meth:`collect_digits`); ``None`` when it played out or the call ended. Raises
        :class:`MediaError` when the audio cannot be had."""
        ...

    async def collect_digits(
        self, num_digits: int, finish_on_key: str, digit_timeout: float
    ) -> str:
        """Key presses (buffered ones first) until ``num_digits`` (0: no limit), the finish key
        (not included), ``digit_timeout`` seconds without a key, or the end of the call."""
        ...

    async def send_digits(self, digits: str) -> None:
        """Send DTMF (RFC 4733) to the caller; ``w`` waits half a second."""
        ...

    async def record(self, verb: Record) -> RecordingOutcome:
        """Beep (``playBeep``), record until silence / ``maxLength`` / a finish key / hangup,
        store the recording and send its ``recordingStatusCallback``."""
        ...


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """How a ``<Dial>`` ended: ``status`` is the DialCallStatus (completed, busy, no-answer,
    failed, canceled); ``params`` go to the ``action`` URL; ``document`` is set when a transfer
    (REFER) replaced the running RCML: it runs next, instead of the action."""

    status: str
    answered: bool
    params: Mapping[str, str]
    document: Document | None = None


class CallLeg(MediaLeg, Protocol):
    """What the executor needs from a call; the media operations come from :class:`MediaLeg`."""

    @property
    def answered(self) -> bool: ...

    @property
    def rejected(self) -> bool: ...

    async def answer(self) -> None: ...

    def reject(self, status: int, reason: str) -> None: ...

    async def hangup(self) -> None: ...

    async def pause(self, seconds: float) -> None: ...

    async def dial(self, verb: Dial) -> DialOutcome:
        """Ring ``verb``'s targets and bridge the first that answers (answering the caller
        then, not before); returns when the bridge (or the attempt) ends."""
        ...


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """Where a live call's RCML goes when the API redirects it (``POST Calls/{CA}``): the
    ``document`` (inline ``Twiml``), else the RCML at ``url`` (``method``), with ``fallback_url``
    when that fetch fails."""

    url: str | None = None
    method: str = "POST"
    document: Document | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"


class Steering(Protocol):
    """How the running document of a call is steered from outside (the supervisor's live call):
    a redirect stops the current verb and the executor runs the new document instead.

    The executor says when a verb starts and ends; only while one runs may the steering cancel
    the call's task to stop it (a redirect arriving between verbs waits for the next one)."""

    def take_redirect(self) -> RedirectTarget | None:
        """The redirect waiting, if any (taken: it is not returned again)."""
        ...

    def verb_started(self) -> None: ...

    def verb_ended(self) -> RedirectTarget | None:
        """The verb is over (done, or stopped by a cancellation); the redirect that stopped it
        or arrived meanwhile, if any (the steering's own cancellation is taken back)."""
        ...


STEERING: ContextVar[Steering | None] = ContextVar("rcmlrouter_steering", default=None)
"""The steering of the call whose task this is: set by the call supervisor for every call task
it runs, so any executor running a call's document (inbound, transferred, API-originated) can
be redirected without being handed anything."""


class DocumentSource(Protocol):
    """Fetches the document at ``url`` with the call's parameters plus ``extra``."""

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document: ...


@dataclass(frozen=True, slots=True)
class SmsOrigin:
    """Who an ``<Sms>`` is sent for: its defaults, its record and its callbacks.

    ``default_to`` is the caller (or the sender of the message being answered), ``default_from``
    the number that was called (or messaged); ``direction`` is ``outbound-call`` inside a voice
    document and ``outbound-reply`` inside an SMS document.
    """

    account_sid: str
    default_to: str
    default_from: str
    direction: str
    number_sid: str | None = None


@dataclass(frozen=True, slots=True)
class SmsResult:
    """How sending one message ended: ``status`` is ``sent`` or ``failed`` (+ ``error_code``)."""

    sid: str
    status: str
    error_code: int | None = None

    def action_params(self) -> dict[str, str]:
        """The parameters posted to the verb's ``action`` (Restcomm's and Twilio's names)."""
        params = {"SmsSid": self.sid, "MessageSid": self.sid, "SmsStatus": self.status}
        params["MessageStatus"] = self.status
        if self.error_code is not None:
            params["ErrorCode"] = str(self.error_code)
        return params


class MessageSender(Protocol):
    """Sends the message an ``<Sms>`` / ``<Message>`` verb describes (messaging implements it).

    Never raises for a message that could not be delivered: that is a ``failed`` result.
    """

    async def send(self, verb: Sms, origin: SmsOrigin) -> SmsResult: ...


@dataclass(frozen=True, slots=True)
class SmsChannel:
    """A sender bound to the call (or message) whose document runs ``<Sms>`` verbs."""

    sender: MessageSender
    origin: SmsOrigin

    async def send(self, verb: Sms) -> SmsResult:
        return await self.sender.send(verb, self.origin)


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    """How a ``<Connect><Stream>`` ended: ``params`` go to ``<Connect>``'s ``action``
    (``StreamSid``, ``StreamEvent``: stream-stopped or stream-error, ``StreamError``)."""

    params: Mapping[str, str] = field(default_factory=dict)
    call_ended: bool = False


class StreamControl(Protocol):
    """A call's media streams (the call wing implements it on the call's media session)."""

    async def connect(self, stream: Stream) -> StreamOutcome:
        """Run a bidirectional stream until either side closes it or the call ends; a stream
        that cannot connect returns at once (stream-error, a notification)."""
        ...

    async def start(self, stream: Stream) -> None:
        """Start a one-way stream; returns at once (it runs on beside the document)."""
        ...

    async def stop(self, name: str) -> None:
        """Stop the stream started under ``name`` (nothing when there is none)."""
        ...
