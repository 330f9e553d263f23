"""Run an RCML document on a call: one small handler per verb, looked up in a table.

The executor talks to the call through the ports of :mod:`rcmlrouter.rcml.ports` (a
``CallLeg``, a ``DocumentSource``, an ``SmsChannel``); it does no I/O itself. A handler (see
:mod:`rcmlrouter.rcml.verb_handler`) returns ``None`` to continue with the next verb, ``STOP`` to
end the document, or a new :class:`Document` that replaces the running one.

A call's document can be redirected from outside (``POST Calls/{CA}``) through the call's
:class:`~rcmlrouter.rcml.ports.Steering` (``STEERING``, set for every call task): the executor
tells it when each verb starts and ends; a redirect stops the running verb (its task is
cancelled and the cancellation taken back) and the new document runs instead of the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rcmlrouter.errors import RcmlError
from rcmlrouter.rcml.media_verbs import MEDIA_HANDLERS
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
from rcmlrouter.rcml.ports import (
    MAX_REDIRECTS,
    STEERING,
    CallLeg,
    DocumentSource,
    RedirectTarget,
    SmsChannel,
    Steering,
    StreamControl,
)
from rcmlrouter.rcml.stream_verbs import STREAM_HANDLERS
from rcmlrouter.rcml.verb_handler import STOP, Outcome

Handler = Callable[["RcmlExecutor", Any], Awaitable[Outcome]]


@dataclass(slots=True)
class ExecutionReport:
    """What happened, for the call record."""

    verbs_run: int = 0
    redirects: int = 0
    api_redirects: int = 0
    unsupported: tuple[str, ...] = ()


class RcmlExecutor:
    """Executes documents on one call; ``notify`` records a warning notification."""

    def __init__(
        self,
        leg: CallLeg,
        source: DocumentSource,
        notify: Callable[[int, str], None],
        sms: SmsChannel | None = None,
        streams: StreamControl | None = None,
    ) -> None:
        self.leg = leg
        self.source = source
        self.notify = notify
        self.sms = sms
        self.streams = streams
        self.report = ExecutionReport()
        self.steering: Steering | None = STEERING.get()

    async def run(self, document: Document) -> ExecutionReport:
        """Run ``document`` (and whatever it redirects to) until it stops or the call ends.

        When the document ends the call is hung up (answered first if needed, as Twilio does).
        Raises :class:`RcmlError` when a further document cannot be obtained.
        """
        current: Document | None = document
        while current is not None:
            current = await self._run_document(current)
            if current is None and self.steering is not None:
                target = self.steering.take_redirect()  # came while the last verb ended
                current = None if target is None else await self._redirected(target)
        if not self.leg.rejected:
            if not self.leg.answered:
                await self.leg.answer()
            await self.leg.hangup()
        return self.report

    async def _run_document(self, document: Document) -> Document | None:
        steering = self.steering
        for verb in document.verbs:
            if steering is not None and (target := steering.take_redirect()) is not None:
                return await self._redirected(target)
            self.report.verbs_run += 1
            if steering is None:
                outcome = await _HANDLERS[type(verb)](self, verb)
            else:
                steered = await self._steered(verb, steering)
                if isinstance(steered, RedirectTarget):
                    return await self._redirected(steered)
                outcome = steered
            if isinstance(outcome, Document):
                return outcome
            if outcome is STOP:
                return None
        return None

    async def _steered(self, verb: Verb, steering: Steering) -> Outcome | RedirectTarget:
        """Run one verb that a redirect may stop: its outcome, or the redirect."""
        steering.verb_started()
        try:
            outcome = await _HANDLERS[type(verb)](self, verb)
        except asyncio.CancelledError:
            target = steering.verb_ended()  # takes back its own cancellation
            task = asyncio.current_task()
            if target is None or (task is not None and task.cancelling()):
                raise  # the far end, or the supervisor, stopped the call
            return target
        target = steering.verb_ended()
        return outcome if target is None else target

    async def _redirected(self, target: RedirectTarget) -> Document:
        """The document a redirect from the API names (inline, or fetched with the call's
        parameters; its ``fallback_url`` when the fetch fails). Not counted against
        :data:`MAX_REDIRECTS`: that bound is for documents that redirect themselves."""
        self.report.api_redirects += 1
        if target.document is not None:
            return target.document
        assert target.url is not None
        try:
            return await self.source.fetch(target.url, target.method, {})
        except RcmlError as exc:
            if target.fallback_url is None:
                raise
            self.notify(exc.error_code, f"redirect to {target.url} failed: {exc}")
            extra = {"ErrorCode": str(exc.error_code), "ErrorUrl": target.url}
            return await self.source.fetch(target.fallback_url, target.fallback_method, extra)

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
    without one an answered bridge ends the call and an unanswered one goes on (Twilio).
    A ``<Conference>``: when the participant leaves (kicked, the conference ended) the action
    is requested, and without one the next verb runs."""
    if verb.conference is not None:
        await executor.ensure_answered()
    outcome = await executor.leg.dial(verb)
    if outcome.document is not None:
        return outcome.document
    if verb.action is not None:
        return await executor.follow(verb.action, verb.method, outcome.params)
    if verb.conference is not None:
        return None
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
    **STREAM_HANDLERS,  # Connect, Start, Stop
}
