"""Crash consistency (issue 13): SIGKILL the daemon at a random instant of a SIPp burst.

One round: a fresh daemon (own SQLite file) with a number whose RCML is ``<Pause length="20"/>``
and whose StatusCallback points at a recording webhook server; SIPp places 150 calls at 30 calls/s,
each caller hanging up after 1.5 s; the daemon is SIGKILLed at a seeded random instant of the
burst, SIPp is killed, the daemon restarts on the same file, and once its outbox has drained the
invariants of :mod:`support.crash` are checked against the webhook server and the API.

A second kind of round does the same with ``<Dial><Sip>`` to a SIPp callee that answers: the
caller's record and callbacks, and the outbound leg's record (``outbound-dial``) and per-noun
status callbacks (initiated, ringing, in-progress, completed), obey the same invariants.

A third kind (issue 18) POSTs messages through the Twilio API (each with its own
Idempotency-Key) while the SMS gateway (a raw UDP receiver answering after 0-300 ms, refusing
every tenth message with 488) takes them, kills the daemon at a seeded random instant, restarts
it, re-POSTs what got no answer with the same key, and checks :func:`support.crash.
check_api_messages`: every message exactly once, final, sent ones at the gateway as one request
(retransmissions allowed), failed ones with their callback, callbacks in order.

A fourth kind (issue 18) places calls through the Twilio API (``POST Calls``, each with its own
Idempotency-Key) faster than ``[outbound] cps`` dials them, to a raw SIP callee behind a
``[[trunks]]`` entry, kills the daemon while most of them wait queued, restarts it, re-POSTs
what got no answer, and checks :func:`support.crash_calls.check_api_calls`: every call answered
201 ends final with its final callback, the queued ones are dialled after the restart, and no
call is dialled twice.

``CRASH_ROUNDS`` sets the number of rounds (default 6: a passing round takes 5-10 s, so about a
minute in all), ``CRASH_SEED`` the seed of the first round (round ``i`` uses ``seed + i``). A
failing round prints its seed; replay it with ``CRASH_SEED=<seed> CRASH_ROUNDS=1 pytest -m crash
tests/e2e/test_crash.py`` (the kill instant is replayed exactly; the scheduling of SIPp and the
daemon around it is not).
"""

from __future__ import annotations

import os
import random
import secrets
import time
from pathlib import Path

import pytest

from support.crash import (
    MessagePoster,
    all_call_records,
    all_message_records,
    call_records,
    callbacks_pending,
    check_api_messages,
    check_callbacks,
    check_records,
    start_burst,
    stop_process,
    wait_messages_settled,
    wait_settled,
)
from support.crash_calls import CALL_FINAL, CallPoster, check_api_calls
from support.daemon import DaemonProcess
from support.sip_callee import SipCallee
from support.sip_gateway import MessageGateway
from support.sipp import scenario
from support.sipp_uas import SippUas
from support.webhooks import Recorded, Reply, WebhookServer, rcml

pytestmark = [pytest.mark.e2e, pytest.mark.crash]

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "6"))
DIAL_ROUNDS = max(1, ROUNDS // 2)
BASE_SEED = int(os.environ.get("CRASH_SEED") or secrets.randbelow(2**31))
CALLS = 150
RATE = 30.0  # calls/s: the burst places calls for 5 s; each is held 1.5 s by its caller
KILL_WINDOW = (0.5, 6.0)  # s after SIPp starts: from the first calls to the last hang-ups
DIAL = "88001"
MESSAGE_ROUNDS = max(1, ROUNDS // 3)  # 2 in make test (about 8 s each)
MESSAGES = 300
MESSAGE_RATE = 150.0  # POSTs/s: 2 s of posting
MESSAGE_KILL_WINDOW = (0.3, 1.9)  # s after the first POST: while posting
CALL_ROUNDS = max(1, ROUNDS // 3)
API_CALLS = 80
API_CALL_CPS = 25  # the daemon dials 25 calls/s: 3.2 s for all of them
API_CALL_KILL_WINDOW = (0.8, 2.6)  # s after the first POST: while calls wait queued


def _replay(seed: int) -> str:
    if seed >= BASE_SEED + 3000:  # an API call round
        return (
            f"CRASH_SEED={seed - 3000} CRASH_ROUNDS=3 .venv/bin/pytest -m crash "
            "tests/e2e/test_crash.py -k queued_calls"
        )
    if seed >= BASE_SEED + 2000:  # a message round
        return (
            f"CRASH_SEED={seed - 2000} CRASH_ROUNDS=2 .venv/bin/pytest -m crash "
            "tests/e2e/test_crash.py -k messages"
        )
    if seed >= BASE_SEED + 1000:  # a dial round
        return (
            f"CRASH_SEED={seed - 1000} CRASH_ROUNDS=2 .venv/bin/pytest -m crash "
            "tests/e2e/test_crash.py -k dial"
        )
    return f"CRASH_SEED={seed} CRASH_ROUNDS=1 .venv/bin/pytest -m crash tests/e2e/test_crash.py"


def _log_lines(daemon: DaemonProcess, sids: list[str], limit: int = 12) -> str:
    """The daemon's log lines that mention the first few violating calls (for the report)."""
    wanted = sids[:3]
    lines = [line for line in list(daemon.raw) if any(sid in line for sid in wanted)]
    return "\n".join(lines[:limit]) or "(no log line names them)"


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_kill_9_in_a_burst_loses_no_call_and_no_final_callback(
    round_no: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _crash_round(BASE_SEED + round_no, tmp_path, capsys, callee=None)


@pytest.mark.parametrize("round_no", range(DIAL_ROUNDS))
def test_kill_9_during_dial_bridges_loses_no_leg_and_no_final_callback(
    round_no: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SippUas("uas_answer_after_ring.xml", tmp_path, calls=CALLS, timeout=60) as callee:
        _crash_round(BASE_SEED + 1000 + round_no, tmp_path, capsys, callee=callee)


def _crash_round(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], *, callee: SippUas | None
) -> None:
    rng = random.Random(seed)
    kill_after = round(rng.uniform(*KILL_WINDOW), 3)
    kind = "dial" if callee else "pause"
    tag = f"[crash {kind} seed={seed} kill_after={kill_after}s]"
    webhooks = WebhookServer().start()
    daemon = DaemonProcess(tmp_path / "node")
    sipp = None
    started = time.monotonic()
    try:
        status = webhooks.route("/status", Reply("", content_type="text/plain"))
        if callee is None:
            document = rcml('<Pause length="20"/>')
        else:  # the outbound leg reports to the same receiver, under its own CallSid
            events = "initiated ringing answered completed"
            document = rcml(
                f'<Dial><Sip statusCallback="{status}" statusCallbackEvent="{events}">'
                f"{callee.uri}</Sip></Dial>"
            )
        voice = webhooks.route("/voice", document)
        daemon.start()
        daemon.create_number(PhoneNumber=DIAL, isSIP="true", VoiceUrl=voice, StatusCallback=status)
        burst = scenario("uac_crash_burst.xml", tmp_path)
        sipp = start_burst(
            burst, daemon.sip_port, service=DIAL, workdir=tmp_path, calls=CALLS, rate=RATE
        )
        burst_start = time.monotonic()
        time.sleep(kill_after)
        daemon.kill()  # SIGKILL: no drain, no flush
        killed_at = round(time.monotonic() - burst_start, 3)
        stop_process(sipp)
        before_kill = len(webhooks.requests("/status"))

        log_mark = len(daemon.lines)
        daemon.start(timeout=30)  # the same SQLite file; start() waits for the new "ready"
        waited = wait_settled(webhooks, "/status", daemon, quiet=2.0, limit=15.0)

        callbacks = webhooks.requests("/status")
        fetches = webhooks.requests("/voice")
        checked = check_callbacks(callbacks)
        routed = {r.params["CallSid"] for r in fetches if r.params.get("CallSid")}
        routed |= set(checked.histories)  # a status callback is only sent once a number matched
        records = call_records(daemon, routed)
        listing = all_call_records(daemon)
        violations = checked.violations + check_records(
            routed, records, listing, checked.final_status, checked.histories
        )
        interrupted = sum(
            line.get("count", 0)
            for line in list(daemon.lines)[log_mark:]
            if line.get("event") == "calls.interrupted"
        )
        summary = (
            f"{tag} killed at {killed_at}s; routed {len(routed)} calls "
            f"({len(fetches)} RCML fetches), {len(listing)} call records; "
            f"callbacks: {checked.delivered} delivered ({before_kill} before the kill) "
            f"for {checked.calls} calls, {checked.redelivered} redelivered; "
            f"{interrupted} calls closed by the restart; settled in {waited:.1f}s; "
            f"round {time.monotonic() - started:.1f}s; violations {len(violations)}"
        )
        with capsys.disabled():
            print("\n" + summary)
        bad = sorted({v.split(":", 1)[0] for v in violations})
        assert not violations, (
            f"{summary}\nreplay: {_replay(seed)}\n"
            + "\n".join(f"{tag} {v}" for v in violations[:40])
            + f"\ndaemon log of {bad[:3]}:\n{_log_lines(daemon, bad)}"
        )
    finally:
        stop_process(sipp)
        daemon.kill()
        webhooks.stop()


@pytest.mark.parametrize("round_no", range(MESSAGE_ROUNDS))
def test_kill_9_while_posting_messages_sends_each_once_or_fails_it_with_its_callback(
    round_no: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = BASE_SEED + 2000 + round_no
    rng = random.Random(seed)
    kill_after = round(rng.uniform(*MESSAGE_KILL_WINDOW), 3)
    delays = random.Random(seed + 1)
    tag = f"[crash messages seed={seed} kill_after={kill_after}s]"
    webhooks = WebhookServer().start()
    gateway = MessageGateway(
        status=lambda a: 488 if a.body.endswith("-REFUSE") else 202,
        delay=lambda _a: delays.uniform(0.0, 0.3),
    ).__enter__()
    daemon = DaemonProcess(tmp_path / "node", RCMLROUTER_SMS_GATEWAY=gateway.uri)
    started = time.monotonic()
    try:
        callback = webhooks.route("/msg-status", Reply("", content_type="text/plain"))
        daemon.start()
        daemon.create_number(PhoneNumber="+15105555555")
        poster = MessagePoster(daemon, count=MESSAGES, rate=MESSAGE_RATE, callback=callback)
        poster.start()
        time.sleep(kill_after)
        daemon.kill()  # SIGKILL: no drain, no flush
        poster.join()
        at_kill = len(gateway.arrivals())
        answered_before = len(poster.answered)
        daemon.start(timeout=30)
        unanswered = len(poster.unanswered)
        poster.retry_unanswered()  # a client retrying its timed-out requests, same keys
        intended = [poster.key(i) for i in range(MESSAGES) if poster.key(i) not in poster.refused]
        waited = wait_messages_settled(daemon)
        time.sleep(0.5)  # a late duplicate at the gateway would show now
        records = all_message_records(daemon)
        counts = {body: len(a) for body, a in _arrivals_by_body(gateway).items()}
        checked = check_api_messages(
            intended, poster.answered, records, gateway.bodies(), counts,
            webhooks.requests("/msg-status"),
        )  # fmt: skip
        recovered = daemon.logs("messages.outbound_recovered")
        summary = (
            f"{tag} {answered_before} answered 201 before the kill, {unanswered} unanswered "
            f"(retried), {len(poster.refused)} refused; {at_kill} gateway arrivals at the kill; "
            f"recovered {recovered[-1]['count'] if recovered else 0} "
            f"(resent {recovered[-1]['resent'] if recovered else 0}); {checked.sent} sent, "
            f"{checked.failed} failed, {checked.retransmitted} retransmitted, "
            f"{checked.redelivered} callbacks redelivered; settled in {waited:.1f}s; "
            f"round {time.monotonic() - started:.1f}s; violations {len(checked.violations)}"
        )
        with capsys.disabled():
            print("\n" + summary)
        assert not poster.refused, poster.refused  # nothing 4xx/5xx (no 429 at this rate)
        assert not checked.violations, f"{summary}\nreplay: {_replay(seed)}\n" + "\n".join(
            f"{tag} {v}" for v in checked.violations[:40]
        )
    finally:
        daemon.kill()
        gateway.close()
        webhooks.stop()


@pytest.mark.parametrize("round_no", range(CALL_ROUNDS))
def test_kill_9_with_queued_calls_dials_each_once_or_fails_it_with_its_callback(
    round_no: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = BASE_SEED + 3000 + round_no
    kill_after = round(random.Random(seed).uniform(*API_CALL_KILL_WINDOW), 3)
    tag = f"[crash queued_calls seed={seed} kill_after={kill_after}s]"
    webhooks = WebhookServer().start()
    callee = SipCallee().__enter__()
    daemon = DaemonProcess(
        tmp_path / "node",
        RCMLROUTER_TRUNKS_CALLEE_URI=f"sip:127.0.0.1:{callee.port}",
        RCMLROUTER_OUTBOUND_CPS=str(API_CALL_CPS),
    )
    started = time.monotonic()
    try:
        callback = webhooks.route("/call-status", Reply("", content_type="text/plain"))
        daemon.start()
        daemon.create_number(PhoneNumber="+15105555555")
        poster = CallPoster(daemon, count=API_CALLS, rate=50.0, callback=callback)
        poster.start()
        time.sleep(kill_after)
        daemon.kill()  # SIGKILL: no drain, no flush
        poster.join()
        dialled_at_kill = len(callee.calls())
        answered_before = len(poster.answered)
        daemon.start(timeout=30)
        unanswered = len(poster.unanswered)
        poster.retry_unanswered()  # a client retrying its timed-out requests, same keys
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = all_call_records(daemon)
            if all(r["status"] in CALL_FINAL for r in records.values()) and not callbacks_pending(
                daemon
            ):
                break
            time.sleep(0.2)
        time.sleep(0.5)  # a late second INVITE would show now
        records = all_call_records(daemon)
        checked = check_api_calls(
            poster.answered, records, callee.calls(), webhooks.requests("/call-status")
        )
        recovered = daemon.logs("calls.queued_recovered")
        summary = (
            f"{tag} {answered_before} answered 201 before the kill, {unanswered} unanswered "
            f"(retried), {len(poster.refused)} refused; {dialled_at_kill} dialled at the kill; "
            f"recovered {recovered[-1]['count'] if recovered else 0} queued; "
            f"{checked.completed} completed, {checked.failed} failed, {checked.redelivered} "
            f"callbacks redelivered; round {time.monotonic() - started:.1f}s; "
            f"violations {len(checked.violations)}"
        )
        with capsys.disabled():
            print("\n" + summary)
        assert not poster.refused, poster.refused
        assert recovered, f"{summary}: the kill came too late (nothing was queued)"
        assert not checked.violations, f"{summary}\nreplay: {_replay(seed)}\n" + "\n".join(
            f"{tag} {v}" for v in checked.violations[:40]
        )
    finally:
        daemon.kill()
        callee.close()
        webhooks.stop()


def _arrivals_by_body(gateway: MessageGateway) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    for arrival in gateway.arrivals():
        found.setdefault(arrival.body, []).append(arrival)
    return found


# -- the checker itself: it must catch what issue 13 saw ---------------------------------------


def _cb(sid: str, seq: int, status: str, **extra: str) -> Recorded:
    params = {"CallSid": sid, "SequenceNumber": str(seq), "CallStatus": status, **extra}
    return Recorded("POST", "/status", "http://x/status", params, {})


def test_checker_accepts_complete_calls_and_counts_redelivery() -> None:
    events = [
        _cb("CA1", 0, "ringing"),
        _cb("CA1", 0, "ringing"),  # redelivered
        _cb("CA2", 0, "ringing"),
        _cb("CA1", 1, "in-progress"),
        _cb("CA2", 1, "failed"),
        _cb("CA1", 2, "completed"),
    ]
    checked = check_callbacks(events)
    assert checked.violations == []
    assert (checked.delivered, checked.calls, checked.redelivered) == (6, 2, 1)
    assert checked.final_status == {"CA1": "completed", "CA2": "failed"}
    records = {"CA1": {"status": "completed", "end_time": "x"}, "CA2": None}
    listing = {"CA1": {"status": "completed", "end_time": "x"}}
    problems = check_records(["CA1"], records, listing, checked.final_status, checked.histories)
    assert problems == []


def test_checker_catches_the_losses_of_issue_13() -> None:
    events = [
        _cb("CA1", 0, "ringing"),  # no record, no final callback
        _cb("CA1", 0, "ringing"),
        _cb("CA2", 0, "ringing"),  # closed by the restart, COMPLETED never delivered
        _cb("CA2", 1, "in-progress"),
        _cb("CA3", 0, "ringing"),  # a gap
        _cb("CA3", 2, "completed"),
        _cb("CA4", 0, "ringing"),  # in-progress durable, record still "ringing": seq 1 twice
        _cb("CA4", 1, "in-progress"),
        _cb("CA4", 1, "failed"),
        _cb("CA5", 0, "ringing", Timestamp="a"),  # the same sequence number emitted twice
        _cb("CA5", 1, "completed", Timestamp="a"),
        _cb("CA5", 1, "completed", Timestamp="b"),
    ]
    checked = check_callbacks(events)
    text = "\n".join(checked.violations)
    assert "CA1: no final-status callback" in text
    assert "CA2: no final-status callback" in text
    assert "CA3: SequenceNumbers [0, 2]" in text
    assert "CA4: two different events with SequenceNumber 1" in text
    assert "CA5: two different events with SequenceNumber 1 (['Timestamp'])" in text
    records = {
        "CA1": None,
        "CA2": {"status": "completed", "end_time": "x"},
        "CA6": {"status": "ringing", "end_time": None},
    }
    listing = {"CA7": {"status": "in-progress", "end_time": None}}
    problems = "\n".join(check_records(["CA1", "CA2", "CA6"], records, listing, {}, {}))
    assert "CA1: reached routing but has no call record" in problems
    assert "CA6: call record in status 'ringing'" in problems
    assert "CA6: call record (status 'ringing') has no end time" in problems
    assert "CA7: call record left unfinished" in problems


def _msg_cb(sid: str, seq: int, status: str) -> Recorded:
    params = {"MessageSid": sid, "SequenceNumber": str(seq), "MessageStatus": status}
    return Recorded("POST", "/msg-status", "http://x/msg-status", params, {})


def test_the_message_checker_catches_losses_duplicates_and_disorder() -> None:
    records = {
        "SM1": {"sid": "SM1", "body": "a", "status": "sent"},
        "SM2": {"sid": "SM2", "body": "b", "status": "sent"},  # reached the gateway twice
        "SM3": {"sid": "SM3", "body": "c", "status": "sending"},  # left unfinished
        "SM4": {"sid": "SM4", "body": "d", "status": "failed"},  # callbacks out of order
        "SM5": {"sid": "SM5", "body": "e", "status": "sent"},  # created twice
        "SM6": {"sid": "SM6", "body": "e", "status": "sent"},
        "SM7": {"sid": "SM7", "body": "g", "status": "sent"},  # never reached the gateway
    }
    gateway = {
        "a": {("c1", "1 MESSAGE")},
        "b": {("c2", "1 MESSAGE"), ("c3", "1 MESSAGE")},
        "e": {("c5", "1 MESSAGE")},
    }
    callbacks = [
        _msg_cb("SM1", 0, "sending"), _msg_cb("SM1", 1, "sent"), _msg_cb("SM1", 1, "sent"),
        _msg_cb("SM2", 0, "sending"), _msg_cb("SM2", 1, "sent"),
        _msg_cb("SM4", 0, "failed"), _msg_cb("SM4", 1, "failed"),
        _msg_cb("SM5", 0, "sent"), _msg_cb("SM6", 0, "sent"), _msg_cb("SM7", 0, "sent"),
    ]  # fmt: skip
    checked = check_api_messages(
        "abcdeg", {"a": "SM1", "b": "SM9"}, records, gateway, {"a": 2}, callbacks
    )
    text = "\n".join(checked.violations)
    assert "b: reached the gateway as 2 messages" in text
    assert "SM3 (c): left 'sending'" in text
    assert "SM4 (d): callbacks out of order ['failed', 'failed']" in text
    assert "e: 2 message records" in text
    assert "SM7 (g): sent but never reached the gateway" in text
    assert "b: answered SM9, stored SM2" in text  # the 201 named another message
    assert "SM1" not in text and (checked.redelivered, checked.retransmitted) == (1, 1)
