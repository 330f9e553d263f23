"""Run an RCML document on a call: one small handler per verb, looked up in a table.

The executor talks to the call through the :class:`CallLeg` protocol and obtains further documents
(``<Redirect>``, ``action`` URLs) through a :class:`DocumentSource`; it does no I/O itself. A
handler returns ``None`` to continue with the next verb, :data:`STOP` to end the document, or a
new :class:`Document` that replaces the running one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from rcmlrouter.errors import RcmlError
from rcmlrouter.rcml.media_verbs import MEDIA_HANDLERS, MediaLeg
from rcmlrouter.rcml.model import (
    Dial,
    Document,
    Hangup,
    Pause,
    Redirect,
    Reject,
    Sms,
    Verb,
)

MAX_REDIRECTS: Final = 20


class CallLeg(MediaLeg, Protocol):
    """What the executor needs from a call (the SIP side implements it); the media operations
    come from :class:`~rcmlrouter.rcml.media_verbs.MediaLeg`."""

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
class DialOutcome:
    """How a ``<Dial>`` ended: ``status`` is the DialCallStatus (completed, busy, no-answer,
    failed, canceled); ``params`` go to the ``action`` URL; ``document`` is set when a transfer
    (REFER) replaced the running RCML: it runs next, instead of the action."""

    status: str
    answered: bool
    params: Mapping[str, str]
    document: Document | None = None


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


class _Stop:
    """Marker: the document ends here."""


STOP: Final = _Stop()

Outcome = Document | _Stop | None
Handler = Callable[["RcmlExecutor", Any], Awaitable[Outcome]]


@dataclass(slots=True)
class ExecutionReport:
    """What happened, for the call record."""

    verbs_run: int = 0
    redirects: int = 0
    unsupported: tuple[str, ...] = ()


class RcmlExecutor:
    """Executes documents on one call; ``notify`` records a warning notification."""

    def __init__(
        self,
        leg: CallLeg,
        source: DocumentSource,
        notify: Callable[[int, str], None],
        sms: SmsChannel | None = None,
    ) -> None:
        self.leg = leg
        self.source = source
        self.notify = notify
        self.sms = sms
        self.report = ExecutionReport()

    async def run(self, document: Document) -> ExecutionReport:
        """Run ``document`` (and whatever it redirects to) until it stops or the call ends.

        When the document ends the call is hung up (answered first if needed, as Twilio does).
        Raises :class:`RcmlError` when a further document cannot be obtained.
        """
        current: Document | None = document
        while current is not None:
            current = await self._run_document(current)
        if not self.leg.rejected:
            if not self.leg.answered:
                await self.leg.answer()
            await self.leg.hangup()
        return self.report

    async def _run_document(self, document: Document) -> Document | None:
        for verb in document.verbs:
            self.report.verbs_run += 1
            outcome = await _HANDLERS[type(verb)](self, verb)
            if isinstance(outcome, Document):
                return outcome
            if outcome is STOP:
                return None
        return None

    async def ensure_answered(self) -> None:
        if not self.leg.answered:
            await self.leg.answer()

    async def follow(
        self, url: str, method: str, extra: Mapping[str, str] | None = None
    ) -> Document:
        """Fetch the next document, bounded by :data:`MAX_REDIRECTS` per call."""
        self.report.redirects += 1
        if self.report.redirects > MAX_REDIRECTS:
            raise RcmlError(f"more than {MAX_REDIRECTS} redirects in one call", 12100, url)
        return await self.source.fetch(url, method, extra or {})


async def _reject(executor: RcmlExecutor, verb: Reject) -> Outcome:
    if executor.leg.answered:
        return STOP  # too late to reject: the document end hangs up
    if verb.reason == "busy":
        executor.leg.reject(486, "Busy Here")
    else:
        executor.leg.reject(603, "Decline")
    return STOP


async def _hangup(executor: RcmlExecutor, verb: Hangup) -> Outcome:
    return STOP


async def _redirect(executor: RcmlExecutor, verb: Redirect) -> Outcome:
    return await executor.follow(verb.url, verb.method)


async def _pause(executor: RcmlExecutor, verb: Pause) -> Outcome:
    await executor.ensure_answered()
    await executor.leg.pause(float(verb.length))
    return None


async def _sms(executor: RcmlExecutor, verb: Sms) -> Outcome:
    """Send the message (the call need not be answered); its ``action`` replaces the rest."""
    if executor.sms is None:
        return await _not_yet_supported(executor, verb)
    result = await executor.sms.send(verb)
    if verb.action is not None:
        return await executor.follow(verb.action, verb.method, result.action_params())
    return None


async def _dial(executor: RcmlExecutor, verb: Dial) -> Outcome:
    """Bridge to the first target that answers. The action's document continues the call;
    without one an answered bridge ends the call and an unanswered one goes on (Twilio)."""
    outcome = await executor.leg.dial(verb)
    if outcome.document is not None:
        return outcome.document
    if verb.action is not None:
        return await executor.follow(verb.action, verb.method, outcome.params)
    return STOP if outcome.answered else None


async def _not_yet_supported(executor: RcmlExecutor, verb: Verb) -> Outcome:
    """A verb the parser knows that this build cannot run: answer, hang up, and say so."""
    name = type(verb).__name__
    executor.report.unsupported += (name,)
    executor.notify(12200, f"<{name}> is not supported by this build; the call was hung up")
    return STOP


_HANDLERS: dict[type[Any], Handler] = {
    Reject: _reject,
    Hangup: _hangup,
    Redirect: _redirect,
    Pause: _pause,
    **MEDIA_HANDLERS,  # Say, Play, Gather, Record
    Dial: _dial,
    Sms: _sms,
}
