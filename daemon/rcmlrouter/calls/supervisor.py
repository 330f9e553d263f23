"""Inbound calls: one supervisor task per call, route → fetch → execute → record.

The supervisor is the one place where a call's exceptions become SIP responses: a
:class:`~rcmlrouter.errors.SipError` carries its status and Reason; an RCML failure becomes 404 or
500 before answer (SPEC §3.2) or a hang-up after; anything unexpected is logged once and answered
500. Every call ends with exactly one ``call.completed`` log line, one call record, and a COMPLETED
status callback when the number has a StatusCallback.
"""

from __future__ import annotations

import asyncio

import structlog

from rcmlrouter import metrics
from rcmlrouter.calls import outbound_call_leg
from rcmlrouter.calls.context import CallContext, caller_name
from rcmlrouter.calls.sip_leg import SipCallLeg
from rcmlrouter.destination import find_destination, routed_number
from rcmlrouter.errors import (
    FetchError,
    OverloadError,
    RcmlError,
    RouteNotFoundError,
    SipError,
    StoreUnavailableError,
)
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.fetch import webhook_failures
from rcmlrouter.rcml.model import Document
from rcmlrouter.rcml.ports import SmsChannel, SmsOrigin
from rcmlrouter.routing.numbers import normalize_dialed
from rcmlrouter.services import Services
from rcmlrouter.sip.endpoint import IncomingCall
from rcmlrouter.sip.uri import parse_uri

log = structlog.get_logger(__name__)

# End causes that come from the far end (or the network) and interrupt the running RCML.
# How long a call waits for its ringing checkpoint to be durable before it is refused with 503.
COMMIT_WAIT = 3.0
STORE_RETRY_AFTER = 5
REMOTE_ENDS = frozenset({"remote-bye", "cancel", "ack-timeout", "transport-error"})


async def _settles_within(future: asyncio.Future[None], seconds: float) -> bool:
    """Wait for ``future`` at most ``seconds``; never cancel it (like ``shield`` + ``timeout``,
    at a fraction of their cost: one future and one timer on every call's path)."""
    if future.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake)
    future.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        future.remove_done_callback(wake)
    return future.done()


class CallSupervisor:
    """Owns every inbound call; ``on_invite`` is the SIP endpoint's hook."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._tasks: set[asyncio.Task[None]] = set()
        self.draining = False

    @property
    def active(self) -> int:
        return len(self._tasks)

    def on_invite(self, call: IncomingCall) -> None:
        if self.draining or len(self._tasks) >= self.services.config.sip.max_calls:
            error = OverloadError("draining" if self.draining else "too many calls")
            call.reject(
                503, headers=[("Retry-After", str(error.retry_after))], reason_header=error.reason
            )
            return
        task = asyncio.create_task(self._supervise(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace: float) -> None:
        """Refuse new calls; wait up to ``grace`` for calls to end, then hang up the rest."""
        self.draining = True
        transferred = asyncio.ensure_future(outbound_call_leg.drain(grace))  # REFER from callers
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await transferred

    async def _supervise(self, call: IncomingCall) -> None:
        """One task per call: runs the call and is cancelled when the far end ends it."""
        ctx = CallContext.start(call, self.services)
        structlog.contextvars.bind_contextvars(call_sid=ctx.call_sid)
        metrics.CALLS_ACTIVE.inc()
        leg = SipCallLeg(call, ctx, self.services)
        task = asyncio.current_task()
        assert task is not None
        state = {"running": True, "interrupted": False}

        def on_end(ended: asyncio.Future[str]) -> None:
            if state["running"] and not ended.cancelled() and ended.result() in REMOTE_ENDS:
                state["interrupted"] = True
                task.cancel()

        call.ended.add_done_callback(on_end)
        try:
            await self._run(ctx, leg)
        except asyncio.CancelledError:
            task.uncancel()
            if not state["interrupted"]:  # drain deadline: hang up what is left
                ctx.end_cause = "drain"
                await leg.hangup_or_reject()
        finally:
            state["running"] = False
            leg.release()
            metrics.CALLS_ACTIVE.dec()
            if call.ended.done() and not call.ended.cancelled():
                ctx.end_cause = ctx.end_cause or call.ended.result()
            ctx.finish()

    async def _run(self, ctx: CallContext, leg: SipCallLeg) -> None:
        try:
            await self._route(ctx)
            await self._ring(ctx, leg)
            document = await self._first_document(ctx)
            origin = SmsOrigin(
                ctx.account_sid,
                default_to=ctx.from_user,
                default_from=ctx.dialed,
                direction="outbound-call",
                number_sid=ctx.number.sid if ctx.number else None,
            )
            executor = RcmlExecutor(leg, ctx, ctx.notify, SmsChannel(self.services.sms, origin))
            await executor.run(document)
        except SipError as exc:
            ctx.outcome = ctx.outcome or ("not-found" if exc.sip_status == 404 else "rejected")
            retry_after = exc.retry_after if isinstance(exc, OverloadError) else None
            await leg.fail(exc.sip_status, exc.reason, retry_after)
        except StoreUnavailableError as exc:
            log.warning("call.store_unavailable", error=str(exc))
            ctx.outcome = "store-unavailable"
            await leg.fail(503, "the store is unavailable", STORE_RETRY_AFTER)
        except RcmlError as exc:
            self._record_rcml_failure(ctx, exc)
            status = 404 if isinstance(exc, FetchError) and exc.http_status == 404 else 500
            await leg.fail(status, f"RCML unavailable: {exc}")
        except Exception as exc:
            log.exception("call.error", error=repr(exc))
            ctx.outcome = "error"
            ctx.notify(11100, f"internal error: {exc!r}")
            await leg.fail(500, "internal error")

    @staticmethod
    async def _ring(ctx: CallContext, leg: SipCallLeg) -> None:
        """180 Ringing. The call is on record before anyone outside hears of it (its first
        webhook): wait for the ringing checkpoint's commit, at most ``COMMIT_WAIT`` seconds."""
        committed = leg.ring()
        if not await _settles_within(committed, COMMIT_WAIT):
            raise StoreUnavailableError(f"no commit within {COMMIT_WAIT} s")
        committed.result()

    async def _route(self, ctx: CallContext) -> None:
        services = self.services
        request = ctx.call.request
        to_uri = request.to_addr.uri
        ruri = parse_uri(request.uri)
        source = ruri if services.config.routing.dialed_from == "request-uri" else to_uri
        ctx.dialed = normalize_dialed(source.user or "")
        destination = await find_destination(
            services, ctx.dialed, (ruri.host, to_uri.host), request.from_addr.uri.host
        )
        if destination.match is None:
            ctx.outcome = "not-found"
            domain = destination.organization.domain
            ctx.notify(13224, f"no number matches {ctx.dialed!r} in {domain}")
            raise RouteNotFoundError(f"no number matches {ctx.dialed or 'the empty string'}")
        routed = await routed_number(services, destination.match)
        ctx.match, ctx.number, ctx.auth_token = routed.match, routed.number, routed.auth_token
        ctx.account_sid = routed.number.account_sid
        ctx.caller_name = caller_name(request) if routed.number.voice_caller_id_lookup else ""

    async def _first_document(self, ctx: CallContext) -> Document:
        number = ctx.number
        assert number is not None
        url, method = number.voice_url, number.voice_method
        if number.voice_application_sid:
            app = await self.services.directory.application(number.voice_application_sid)
            url, method = app.voice_url, app.voice_method
        if not url:
            ctx.outcome = "not-found"
            raise RouteNotFoundError(f"number {number.phone_number} has no voice URL")
        return await ctx.fetch(url, method, {})

    def _record_rcml_failure(self, ctx: CallContext, exc: RcmlError) -> None:
        ctx.outcome = "rcml-error"
        ctx.error_code = exc.error_code
        for failure in webhook_failures(exc) or (exc,):
            ctx.notify(failure.error_code, str(failure), failure.url)
