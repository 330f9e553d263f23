"""One inbound call, from the INVITE to its record: facts → route → ring → document → execute.

This is the one place where an inbound call's exceptions become SIP responses: a
:class:`~rcmlrouter.errors.SipError` carries its status and Reason; an RCML failure becomes 404 or
500 before answer (SPEC §3.2) or a hang-up after; anything unexpected is logged once and answered
500. Every call ends with exactly one ``call.completed`` log line, one call record, and a
COMPLETED status callback when the number has a StatusCallback (``calls/call_events.py``).

Stopped by the supervisor (:meth:`~rcmlrouter.calls.live_call.LiveCall.interrupt`), the call ends
as the cause says: ``drain`` hangs up an answered call and refuses an unanswered one with 503;
``api-hangup`` (``Status=completed``) and ``canceled`` (``Status=canceled``) hang up an answered
call (``completed``) and refuse an unanswered one with 480 and a Reason (``canceled``).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from rcmlrouter import metrics
from rcmlrouter.calls.call_events import CallEvents
from rcmlrouter.calls.call_state import CallState, read_facts
from rcmlrouter.calls.documents import CallDocuments, voice_url
from rcmlrouter.calls.inbound_leg import InboundLeg
from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.destination import find_destination, routed_number
from rcmlrouter.errors import (
    FetchError,
    OverloadError,
    RcmlError,
    RouteNotFoundError,
    SipError,
    SipParseError,
    StoreUnavailableError,
)
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.fetch import webhook_failures
from rcmlrouter.rcml.model import Document
from rcmlrouter.rcml.ports import SmsChannel, SmsOrigin
from rcmlrouter.sip.call import IncomingCall

log = structlog.get_logger(__name__)

# How long a call waits for its ringing checkpoint to be durable before it is refused with 503.
COMMIT_WAIT = 3.0
STORE_RETRY_AFTER = 5
API_STOPS = frozenset({"api-hangup", "canceled"})  # LiveCall.interrupt causes of the API
ERROR_NO_NUMBER = 13224  # notification: no number matches the dialed string


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


async def run_inbound_call(call: IncomingCall, live: LiveCall, wiring: CallWiring) -> None:
    """The call's task (the supervisor cancels it when the far end ends the call, or at the
    drain deadline: then what is left is hung up)."""
    services = wiring.services
    started = time.time()
    facts = read_facts(call.request, services.config.routing.dialed_from)
    state = CallState(live.call_sid, started, facts, services.admin_account_sid)
    structlog.contextvars.bind_contextvars(call_sid=state.call_sid)
    metrics.CALLS_ACTIVE.inc()
    events = CallEvents(state, services.outbox)
    leg = InboundLeg(call, state, events, wiring)
    live.status_of = state.current_status
    live.answered_at = lambda: state.answer_time
    live.callbacks = events
    live.streams = leg.streams
    live.watch(call.ended)
    try:
        await _run(state, leg, wiring)
    except asyncio.CancelledError:
        live.uncancel()
        if not live.remote_ended:  # the supervisor stopped it: end what is left
            state.end_cause = live.stop_cause or "drain"
            await _stop(leg, state.end_cause)
    finally:
        live.settle()
        leg.release()
        metrics.CALLS_ACTIVE.dec()
        if call.ended.done() and not call.ended.cancelled():
            state.end_cause = state.end_cause or call.ended.result()
        live.closing(_finish(state, events))


async def _stop(leg: InboundLeg, cause: str) -> None:
    """End a call the supervisor stopped, as ``cause`` says (see the module docstring)."""
    if cause in API_STOPS:
        await leg.fail(480, "the call was ended through the API")
    else:
        await leg.hangup_or_reject()


async def _run(state: CallState, leg: InboundLeg, wiring: CallWiring) -> None:
    try:
        await _route(state, wiring)
        await _ring(leg)
        documents = CallDocuments(state, wiring)
        document = await _first_document(state, wiring, documents)
        facts = state.facts
        origin = SmsOrigin(
            state.account_sid,
            default_to=facts.from_user,
            default_from=facts.dialed,
            direction="outbound-call",
            number_sid=state.number.sid if state.number else None,
        )
        sms = SmsChannel(wiring.services.sms, origin)
        await RcmlExecutor(leg, documents, documents.notify, sms, leg.streams).run(document)
    except SipError as exc:
        state.outcome = state.outcome or ("not-found" if exc.sip_status == 404 else "rejected")
        retry_after = exc.retry_after if isinstance(exc, OverloadError) else None
        await leg.fail(exc.sip_status, exc.reason, retry_after)
    except StoreUnavailableError as exc:
        log.warning("call.store_unavailable", error=str(exc))
        state.outcome = "store-unavailable"
        await leg.fail(503, "the store is unavailable", STORE_RETRY_AFTER)
    except RcmlError as exc:
        _record_rcml_failure(state, wiring, exc)
        status = 404 if isinstance(exc, FetchError) and exc.http_status == 404 else 500
        await leg.fail(status, f"RCML unavailable: {exc}")
    except Exception as exc:
        log.exception("call.error", error=repr(exc))
        state.outcome = "error"
        wiring.notify(state, 11100, f"internal error: {exc!r}")
        await leg.fail(500, "internal error")


async def _route(state: CallState, wiring: CallWiring) -> None:
    """The number the call is for (SPEC §2), its account and signing key."""
    services, facts = wiring.services, state.facts
    if facts.unreadable is not None:
        raise SipParseError(facts.unreadable)
    destination = await find_destination(
        services, facts.dialed, facts.destination_hosts, facts.caller_host
    )
    if destination.match is None:
        state.outcome = "not-found"
        domain = destination.organization.domain
        wiring.notify(state, ERROR_NO_NUMBER, f"no number matches {facts.dialed!r} in {domain}")
        raise RouteNotFoundError(f"no number matches {facts.dialed or 'the empty string'}")
    routed = await routed_number(services, destination.match)
    state.match, state.number, state.auth_token = routed.match, routed.number, routed.auth_token
    state.account_sid = routed.number.account_sid
    if routed.number.voice_caller_id_lookup:
        state.caller_name = facts.caller_display


async def _ring(leg: InboundLeg) -> None:
    """180 Ringing. The call is on record before anyone outside hears of it (its first
    webhook): wait for the ringing checkpoint's commit, at most ``COMMIT_WAIT`` seconds."""
    committed = leg.ring()
    if not await _settles_within(committed, COMMIT_WAIT):
        raise StoreUnavailableError(f"no commit within {COMMIT_WAIT} s")
    committed.result()


async def _first_document(
    state: CallState, wiring: CallWiring, documents: CallDocuments
) -> Document:
    number = state.number
    assert number is not None
    target = await voice_url(wiring.services.directory, number)
    if target is None:
        state.outcome = "not-found"
        raise RouteNotFoundError(f"number {number.phone_number} has no voice URL")
    return await documents.fetch(target.url, target.method, {})


def _record_rcml_failure(state: CallState, wiring: CallWiring, exc: RcmlError) -> None:
    state.outcome = "rcml-error"
    state.error_code = exc.error_code
    for failure in webhook_failures(exc) or (exc,):
        wiring.notify(state, failure.error_code, str(failure), failure.url)


def _finish(state: CallState, events: CallEvents) -> asyncio.Future[None]:
    """The final record and callback, the calls metric, one ``call.completed`` line; the
    future resolves when the record is durable."""
    end = time.time()
    status = events.finish(end)
    kind = state.match.kind if state.match else None
    metrics.CALLS_TOTAL.labels(state.outcome or status, kind or "none").inc()
    log.info(
        "call.completed",
        outcome=state.outcome or status,
        call_status=status,
        match_kind=kind,
        number_sid=state.number.sid if state.number else None,
        dialed=state.facts.dialed,
        sip_status=state.sip_status,
        end_cause=state.end_cause,
        duration=round(end - state.start_time, 3),
        used_fallback=state.fetches.used_fallback,
    )
    structlog.contextvars.unbind_contextvars("call_sid")
    assert events.final_commit is not None
    return events.final_commit
