"""call_events.py: records and status-callback streams of any leg, numbered 0, 1, 2…, each
record carrying the next number (what recovery needs to send the final event it owes)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rcmlrouter.calls.call_events import (
    CallEvents,
    LegEvents,
    notify_call,
    owed_final_event,
    post_action_after_hangup,
)
from rcmlrouter.rcml.model import DialSip
from support.call_parts import RecordingNotifications, RecordingOutbox, routed_state

CALLBACK = "http://hooks.example/status"


def inbound(**number_fields: Any) -> tuple[CallEvents, RecordingOutbox]:
    outbox = RecordingOutbox()
    events = CallEvents(routed_state(**number_fields), outbox)  # type: ignore[arg-type]
    return events, outbox


async def test_an_answered_call_sends_ringing_in_progress_completed_in_order() -> None:
    events, outbox = inbound(status_callback=CALLBACK)
    state = events.state
    await events.checkpoint("ringing")
    state.answer_time, state.sip_status = state.start_time + 2, 200
    await events.checkpoint("in-progress")
    assert events.finish(state.start_time + 12.9) == "completed"
    sent = outbox.events
    assert [e.params["CallStatus"] for e in sent] == ["ringing", "in-progress", "completed"]
    assert [e.sequence for e in sent] == [0, 1, 2]
    assert [e.params["SequenceNumber"] for e in sent] == ["0", "1", "2"]
    assert {(e.call_sid, e.url) for e in sent} == {(state.call_sid, CALLBACK)}
    assert sent[2].params["CallDuration"] == "10" and "SipResponseCode" not in sent[2].params
    records = [c.call for c in outbox.commits]
    assert [r.status for r in records if r] == ["ringing", "in-progress", "completed"]
    assert [r.next_sequence for r in records if r] == [1, 2, 3]
    final = records[-1]
    assert final is not None and final.duration == 10.0 and final.status_callback == CALLBACK
    assert final.callback_params["ForwardedFrom"] == "+16505550111"
    assert final.direction == "inbound" and final.to == "5105555555"


async def test_a_cancelled_call_ends_canceled_with_487() -> None:
    events, outbox = inbound(status_callback=CALLBACK)
    await events.checkpoint("ringing")
    events.state.end_cause = "cancel"
    assert events.finish(events.state.start_time + 1) == "canceled"
    final = outbox.events[-1].params
    assert (final["CallStatus"], final["SipResponseCode"], final["CallDuration"]) == (
        "canceled",
        "487",
        "0",
    )


async def test_without_a_status_callback_only_records() -> None:
    events, outbox = inbound()
    await events.checkpoint("ringing")
    events.finish(events.state.start_time + 1)
    assert outbox.events == []
    record = outbox.commits[-1].call
    assert record is not None and record.callback_params == {} and record.status_callback is None
    assert record.next_sequence == 0


@dataclass
class Leg:
    sid: str = "CA" + "2" * 32
    from_: str = "+14155550100"
    to: str = "bob"
    start_time: float = 1_700_000_000.0
    answer_time: float | None = None
    end_time: float | None = None
    status: str = "initiated"
    sip_status: int | None = None
    duration: int = 0
    sip_call_id: str | None = "leg-call-id"


async def test_a_dialed_leg_reports_only_the_events_its_noun_asked_for() -> None:
    outbox = RecordingOutbox()
    noun = DialSip("sip:bob@example.net", CALLBACK, ("initiated", "answered", "completed"))
    events = LegEvents(outbox, noun, account_sid="AC1", parent_call_sid="CA" + "1" * 32)  # type: ignore[arg-type]
    leg = Leg()
    events.commit(leg, "initiated")
    leg.status = "ringing"
    events.commit(leg, "ringing")  # not asked for: the record only
    leg.status, leg.answer_time = "in-progress", leg.start_time + 1
    events.commit(leg, "answered")
    leg.status, leg.end_time, leg.duration, leg.sip_status = "completed", leg.start_time + 5, 4, 200
    events.commit(leg, "completed")
    sent = outbox.events
    assert [e.params["CallStatus"] for e in sent] == ["initiated", "in-progress", "completed"]
    assert [e.sequence for e in sent] == [0, 1, 2]
    assert sent[2].params["CallDuration"] == "4" and sent[2].params["SipResponseCode"] == "200"
    assert all(e.params["CallbackSource"] == "call-progress-events" for e in sent)
    assert all(e.params["ParentCallSid"] == "CA" + "1" * 32 for e in sent)
    records = [c.call for c in outbox.commits if c.call is not None]
    # each record carries the number of the next event: a crash right after a commit owes it
    assert [r.next_sequence for r in records] == [1, 1, 2, 3]
    assert records[-1].duration == 4.0 and records[-1].direction == "outbound-dial"
    assert records[-1].callback_params["CallSid"] == leg.sid


async def test_a_leg_without_the_completed_event_owes_nothing_after_a_crash() -> None:
    outbox = RecordingOutbox()
    noun = DialSip("sip:bob@example.net", CALLBACK, ("initiated",))
    events = LegEvents(outbox, noun, account_sid="AC1", parent_call_sid="CA1")  # type: ignore[arg-type]
    events.commit(Leg(), "initiated")
    record = outbox.commits[0].call
    assert record is not None and record.status_callback is None and record.callback_params == {}


async def test_recovery_sends_the_final_event_at_the_next_number() -> None:
    events, outbox = inbound(status_callback=CALLBACK)
    await events.checkpoint("ringing")
    record = outbox.commits[0].call
    assert record is not None
    owed = owed_final_event(outbox, record, "failed", 0, record.start_time + 30)  # type: ignore[arg-type]
    assert (owed.sequence, owed.url, owed.call_sid) == (1, CALLBACK, record.sid)
    params = owed.params
    assert (params["CallStatus"], params["SequenceNumber"], params["SipResponseCode"]) == (
        "failed",
        "1",
        "500",
    )
    assert params["SipHeader_X-Customer-Id"] == "4711"  # the call's own parameters come along
    answered = dataclasses.replace(record, answer_time=record.start_time + 1)
    assert "SipResponseCode" not in owed_final_event(outbox, answered, "completed", 29, 0.0).params  # type: ignore[arg-type]


async def test_an_action_after_hangup_goes_through_the_outbox() -> None:
    outbox = RecordingOutbox()
    state = routed_state()
    post_action_after_hangup(
        outbox,  # type: ignore[arg-type]
        state,
        "RE1",
        "completed",
        ("http://app/after", "GET"),
        {"Digits": "hangup"},
    )
    [event] = outbox.events
    assert (event.call_sid, event.sequence, event.url, event.method) == (
        "RE1",
        0,
        "http://app/after",
        "GET",
    )
    assert event.params["CallStatus"] == "completed" and event.params["Digits"] == "hangup"


def test_notifications_are_cut_to_their_limit() -> None:
    notifications = RecordingNotifications()
    notify_call(notifications, "AC1", "CA1", 11200, "x" * 2000, "http://u")  # type: ignore[arg-type]
    [added] = notifications.added
    assert (added.call_sid, added.error_code, added.request_url) == ("CA1", 11200, "http://u")
    assert len(added.message) == 1000 and added.sid.startswith("NO")


MOVED = "http://hooks.example/moved"


async def test_the_api_moves_an_inbound_calls_remaining_events_durably() -> None:
    events, outbox = inbound(status_callback=CALLBACK)
    state = events.state
    await events.checkpoint("ringing")
    state.answer_time, state.sip_status = state.start_time + 1, 200
    await events.checkpoint("in-progress")
    await events.switch_callbacks(MOVED, "GET")
    moved = outbox.commits[-1].call  # the record says so at once: a restart sends there
    assert moved is not None and not outbox.commits[-1].events
    assert (moved.status_callback, moved.status_callback_method) == (MOVED, "GET")
    assert moved.status == "in-progress" and moved.next_sequence == 2
    events.finish(state.start_time + 3)
    final = outbox.events[-1]
    assert (final.url, final.method, final.sequence) == (MOVED, "GET", 2)
    assert [e.url for e in outbox.events[:2]] == [CALLBACK, CALLBACK]
    assert events.switch_callbacks("http://late", "POST") is events.final_commit  # ended


async def test_a_number_without_callbacks_gets_its_final_event_through_the_api() -> None:
    events, outbox = inbound()
    await events.checkpoint("ringing")
    await events.switch_callbacks(MOVED, "POST")
    record = outbox.commits[-1].call
    assert record is not None and record.callback_params["CallSid"] == events.state.call_sid
    events.state.answer_time = events.state.start_time + 1
    await events.checkpoint("in-progress")  # it reported nothing before: only the end
    events.finish(events.state.start_time + 2)
    assert [(e.url, e.params["CallStatus"]) for e in outbox.events] == [(MOVED, "completed")]


async def test_an_empty_status_callback_stops_the_remaining_events() -> None:
    events, outbox = inbound(status_callback=CALLBACK)
    await events.checkpoint("ringing")
    await events.switch_callbacks("", "POST")
    events.finish(events.state.start_time + 2)
    assert [e.params["CallStatus"] for e in outbox.events] == ["ringing"]
    assert outbox.commits[-1].call is not None and outbox.commits[-1].call.status_callback is None


async def test_a_transferred_legs_events_move_and_its_completed_is_sent() -> None:
    outbox = RecordingOutbox()
    noun = DialSip("sip:bob@example.net", CALLBACK, ("answered",))
    events = LegEvents(outbox, noun, account_sid="AC1", parent_call_sid="CA1")  # type: ignore[arg-type]
    leg = Leg(status="in-progress", answer_time=1_700_000_001.0)
    events.commit(leg, "answered")
    await events.switch_callbacks(leg, MOVED, "POST")
    record = outbox.commits[-1].call
    assert record is not None and record.status_callback == MOVED  # the final event is owed
    leg.status, leg.end_time = "completed", leg.start_time + 5
    events.commit(leg, "completed")
    assert [(e.url, e.params["CallStatus"]) for e in outbox.events] == [
        (CALLBACK, "in-progress"),
        (MOVED, "completed"),
    ]
