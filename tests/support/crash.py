"""Crash rounds: a SIPp burst against the daemon, SIGKILL, restart, and the invariants checked.

The invariants (issue 13) are checked against what a recording webhook server received and what
the API reports after the restart:

1. every call that had any status callback delivered ends with a delivered final-status callback;
   its distinct SequenceNumbers are exactly 0..n, the final status carries n, the statuses rise
   ringing < in-progress < final with the sequence, and each sequence number is first delivered
   after its predecessor. Redelivery (the same event again: identical parameters) is allowed and
   counted; two *different* events under one CallSid + SequenceNumber are a violation.
2. every call that reached routing (the webhook server saw its voice RCML fetch, or it had a
   status callback, which is only sent once a number matched) has a call record after the
   restart, in a final status, with an end time, and (when it had a final callback) the status
   of that callback.
3. no call record is left unfinished (ringing / in-progress / queued, or no end time).

Messages sent through the API (issue 18) have invariants of their own: see
:func:`check_api_messages` (a poster thread with an Idempotency-Key per message, the raw UDP
gateway of ``support/sip_gateway.py``).

A request counts as delivered once the webhook server recorded it: the server has then read the
whole request and answers 200. If the daemon died before reading that 200, it owes the event
again after the restart (at-least-once), so the invariants hold all the same.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.daemon import DaemonProcess
from support.ports import free_port
from support.sipp import sipp_path
from support.webhooks import Recorded, WebhookServer

FINAL = frozenset({"completed", "failed", "busy", "no-answer", "canceled"})
UNFINISHED = frozenset({"queued", "ringing", "in-progress"})
# "initiated" is the first event of an outbound <Dial> leg's per-noun statusCallback.
RANK = {"initiated": -1, "ringing": 0, "in-progress": 1, **dict.fromkeys(FINAL, 2)}


# -- the burst ---------------------------------------------------------------------------------


def start_burst(
    scenario_file: Path, port: int, *, service: str, workdir: Path, calls: int, rate: float
) -> subprocess.Popen[bytes]:
    """SIPp placing ``calls`` calls at ``rate`` calls/s in the background (killed by the test)."""
    out = (workdir / "sipp-burst.out").open("wb")
    try:
        return subprocess.Popen(
            [sipp_path(), f"127.0.0.1:{port}", "-sf", str(scenario_file), "-s", service,
             "-m", str(calls), "-r", str(rate), "-i", "127.0.0.1", "-p", str(free_port()),
             "-mp", str(free_port()), "-t", "u1", "-timeout", "60s", "-nostdin"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
        )  # fmt: skip
    finally:
        out.close()


def stop_process(proc: subprocess.Popen[Any] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


# -- waiting for the restarted daemon to settle ------------------------------------------------


def callbacks_pending(daemon: DaemonProcess) -> float | None:
    """The daemon's outbox depth from ``/metrics`` (None when it cannot be read)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{daemon.api_port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    found = re.search(r"^rcmlrouter_callbacks_pending (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def open_calls(callbacks: Iterable[Recorded]) -> set[str]:
    """CallSids with callbacks delivered but no final-status callback yet."""
    seen: set[str] = set()
    closed: set[str] = set()
    for request in callbacks:
        sid = request.params.get("CallSid", "")
        seen.add(sid)
        if request.params.get("CallStatus") in FINAL:
            closed.add(sid)
    return seen - closed


def wait_settled(
    webhooks: WebhookServer,
    path: str,
    daemon: DaemonProcess,
    *,
    quiet: float = 2.0,
    limit: float = 15.0,
) -> float:
    """Wait until no callback arrived for ``quiet`` s, every call seen is closed and the outbox
    is empty, or ``limit`` s passed. Returns the time waited."""
    started = time.monotonic()
    count, changed = -1, started
    while True:
        now = time.monotonic()
        requests = webhooks.requests(path)
        if len(requests) != count:
            count, changed = len(requests), now
        if now - started >= limit:
            return now - started
        if now - changed >= quiet and not open_calls(requests):
            pending = callbacks_pending(daemon)
            if not pending:
                return now - started
        time.sleep(0.1)


# -- the API -----------------------------------------------------------------------------------


def all_call_records(daemon: DaemonProcess) -> dict[str, dict[str, Any]]:
    """Every call record of the daemon's account (``GET Calls.json``, all pages)."""
    records: dict[str, dict[str, Any]] = {}
    with daemon.api() as api:
        page = 0
        while True:
            response = api.get("/Calls.json", params={"Page": page, "PageSize": 1000})
            response.raise_for_status()
            items = response.json()["calls"]
            records.update((item["sid"], item) for item in items)
            if len(items) < 1000:
                return records
            page += 1


def call_records(daemon: DaemonProcess, sids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """``GET Calls/{CA}.json`` for each sid; None for a 404."""
    found: dict[str, dict[str, Any] | None] = {}
    with daemon.api() as api:
        for sid in sids:
            response = api.get(f"/Calls/{sid}.json")
            if response.status_code == 404:
                found[sid] = None
                continue
            response.raise_for_status()
            found[sid] = dict(response.json())
    return found


# -- the invariants ----------------------------------------------------------------------------


@dataclass
class CallbackCheck:
    delivered: int = 0  # callback requests received, redeliveries included
    calls: int = 0  # CallSids with at least one callback
    redelivered: int = 0  # requests repeating an event already received
    final_status: dict[str, str] = field(default_factory=dict)  # CallSid -> final CallStatus
    violations: list[str] = field(default_factory=list)
    histories: dict[str, str] = field(default_factory=dict)  # CallSid -> "0:ringing 1:…"


def _history(requests: list[Recorded]) -> str:
    return " ".join(
        f"{r.params.get('SequenceNumber')}:{r.params.get('CallStatus')}" for r in requests
    )


def check_callbacks(callbacks: Iterable[Recorded]) -> CallbackCheck:
    """Invariant 1 over the status callbacks received, in arrival order."""
    result = CallbackCheck()
    by_call: dict[str, list[Recorded]] = {}
    for request in callbacks:
        result.delivered += 1
        by_call.setdefault(request.params.get("CallSid", ""), []).append(request)
    result.calls = len(by_call)
    for sid, requests in by_call.items():
        history = result.histories[sid] = _history(requests)
        problems: list[str] = []
        first: dict[int, Mapping[str, str]] = {}  # sequence -> the event, in first-arrival order
        for request in requests:
            raw = request.params.get("SequenceNumber", "")
            if not raw.isdigit():
                problems.append(f"SequenceNumber {raw!r} is not a number")
                continue
            sequence = int(raw)
            if sequence not in first:
                first[sequence] = request.params
            elif request.params == first[sequence]:
                result.redelivered += 1
            else:
                differs = sorted(
                    k
                    for k in set(request.params) | set(first[sequence])
                    if request.params.get(k) != first[sequence].get(k)
                )
                problems.append(f"two different events with SequenceNumber {sequence} ({differs})")
        if not sid:
            problems.append("callback without a CallSid")
        sequences = list(first)
        if sequences != sorted(sequences):
            problems.append(f"sequence numbers first delivered out of order {sequences}")
        top = max(sequences, default=-1)
        if sorted(sequences) != list(range(top + 1)):
            problems.append(f"SequenceNumbers {sorted(sequences)} are not 0..{top} without a gap")
        statuses = [first[s].get("CallStatus", "") for s in sorted(first)]
        unknown = [s for s in statuses if s not in RANK]
        finals = [s for s in statuses if s in FINAL]
        if unknown:
            problems.append(f"unknown CallStatus {unknown}")
        elif not finals:
            problems.append("no final-status callback delivered")
        else:
            if len(finals) > 1:
                problems.append(f"{len(finals)} final statuses {finals}")
            if statuses[-1] not in FINAL:
                problems.append("the final status does not carry the highest SequenceNumber")
            ranks = [RANK[s] for s in statuses]
            if any(a >= b for a, b in itertools.pairwise(ranks)):
                problems.append(f"statuses not ordered ringing < in-progress < final {statuses}")
            result.final_status[sid] = finals[-1]
        result.violations.extend(f"{sid}: {p} — delivered [{history}]" for p in problems)
    return result


def check_records(
    routed: Iterable[str],
    records: Mapping[str, Mapping[str, Any] | None],
    listing: Mapping[str, Mapping[str, Any]],
    final_status: Mapping[str, str],
    histories: Mapping[str, str],
) -> list[str]:
    """Invariants 2 (``records``: the GET of every routed call) and 3 (``listing``: all calls)."""
    violations: list[str] = []

    def seen(sid: str) -> str:
        return f" — callbacks [{histories[sid]}]" if sid in histories else " — no callbacks"

    routed_sids = set(routed)
    for sid in sorted(routed_sids):
        record = records.get(sid)
        if record is None:
            violations.append(f"{sid}: reached routing but has no call record{seen(sid)}")
            continue
        status = record.get("status")
        if status not in FINAL:
            violations.append(f"{sid}: call record in status {status!r}{seen(sid)}")
        if not record.get("end_time"):
            violations.append(f"{sid}: call record (status {status!r}) has no end time{seen(sid)}")
        if sid in final_status and status in FINAL and status != final_status[sid]:
            violations.append(
                f"{sid}: call record says {status!r}, its final callback {final_status[sid]!r}"
            )
    for sid, record in sorted(listing.items()):
        if sid in routed_sids:
            continue  # checked above
        status = record.get("status")
        if status in UNFINISHED or status not in FINAL or not record.get("end_time"):
            violations.append(
                f"{sid}: call record left unfinished (status {status!r}, "
                f"end_time {record.get('end_time')!r}){seen(sid)}"
            )
    return violations


# -- API messages (issue 18): POSTs, kill -9, restart ------------------------------------------

MESSAGE_FINAL = frozenset({"sent", "failed"})
MESSAGE_ORDER = {"sending": 0, **dict.fromkeys(MESSAGE_FINAL, 1)}


class MessagePoster:
    """POSTs ``count`` messages at ``rate`` per second from a thread, each with its own
    Idempotency-Key (also its Body, so the gateway's arrivals name it), and records the answers:
    ``answered`` key -> sid for every 201, ``unanswered`` the keys whose request failed (the
    daemon died under it). :meth:`retry_unanswered` re-POSTs those with the same key, as a
    client retrying on a timeout does."""

    def __init__(self, daemon: DaemonProcess, *, count: int, rate: float, callback: str) -> None:
        self.daemon = daemon
        self.count = count
        self.rate = rate
        self.callback = callback
        self.answered: dict[str, str] = {}
        self.unanswered: list[str] = []
        self.refused: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def key(index: int) -> str:
        # every 10th body is refused by the gateway (488): those end failed, not sent
        return f"msg-{index:05d}" + ("-REFUSE" if index % 10 == 7 else "")

    def start(self) -> MessagePoster:
        self._thread.start()
        return self

    def join(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)

    def _client(self) -> httpx.Client:
        base = f"http://127.0.0.1:{self.daemon.api_port}/2010-04-01"
        return httpx.Client(
            base_url=f"{base}/Accounts/{self.daemon.account_sid}",
            auth=(self.daemon.account_sid, self.daemon.auth_token),
            timeout=5,
        )

    def _post(self, client: httpx.Client, key: str) -> None:
        data = {"To": "+15551230000", "From": "+15105555555", "Body": key,
                "StatusCallback": self.callback}  # fmt: skip
        try:
            response = client.post("/Messages.json", data=data, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            self.unanswered.append(key)
            return
        if response.status_code == 201:
            self.answered[key] = response.json()["sid"]
        else:
            self.refused[key] = response.status_code

    def _run(self) -> None:
        started = time.monotonic()
        with self._client() as client:
            for index in range(self.count):
                delay = started + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._post(client, self.key(index))

    def retry_unanswered(self) -> None:
        pending, self.unanswered = self.unanswered, []
        with self._client() as client:
            for key in pending:
                self._post(client, key)


def all_message_records(daemon: DaemonProcess) -> dict[str, dict[str, Any]]:
    """Every message of the daemon's account (``GET SMS/Messages.json``, all pages)."""
    records: dict[str, dict[str, Any]] = {}
    with daemon.api() as api:
        page = 0
        while True:
            response = api.get("/SMS/Messages.json", params={"Page": page, "PageSize": 1000})
            response.raise_for_status()
            items = response.json()["messages"]
            records.update((item["sid"], item) for item in items)
            if len(items) < 1000:
                return records
            page += 1


def wait_messages_settled(
    daemon: DaemonProcess, *, quiet: float = 1.0, limit: float = 30.0
) -> float:
    """Wait until no message is queued or sending and the outbox is empty for ``quiet`` s (or
    ``limit`` s passed); the time waited."""
    started = time.monotonic()
    calm_since: float | None = None
    while time.monotonic() - started < limit:
        open_ = [
            m for m in all_message_records(daemon).values() if m["status"] not in MESSAGE_FINAL
        ]
        if not open_ and not callbacks_pending(daemon):
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                break
        else:
            calm_since = None
        time.sleep(0.1)
    return time.monotonic() - started


@dataclass
class MessageCheck:
    sent: int = 0
    failed: int = 0
    retransmitted: int = 0  # messages whose request reached the gateway more than once
    redelivered: int = 0  # callbacks repeating an event already received
    violations: list[str] = field(default_factory=list)


def check_api_messages(
    intended: Iterable[str],
    answered: Mapping[str, str],
    records: Mapping[str, Mapping[str, Any]],
    gateway_bodies: Mapping[str, set[tuple[str, str]]],
    gateway_counts: Mapping[str, int],
    callbacks: Iterable[Recorded],
) -> MessageCheck:
    """The invariants of POST Messages across a crash:

    1. every message the client meant to send (``intended`` keys, each the Body of its own
       Idempotency-Key, answered 201 before or after the restart) has exactly one record, and
       the 201's sid is that record;
    2. every record is final (sent / failed); a sent one reached the gateway under exactly one
       (Call-ID, CSeq) (retransmissions allowed); nothing reached it under two;
    3. its status callbacks: SequenceNumbers 0..n without a gap, the statuses in order
       (sending, then sent / failed), the last one the record's status; two different events
       under one SequenceNumber are a violation.
    """
    result = MessageCheck()
    by_body: dict[str, list[Mapping[str, Any]]] = {}
    for record in records.values():
        by_body.setdefault(record["body"], []).append(record)
    for key in sorted(intended):
        found = by_body.get(key, [])
        if len(found) != 1:
            result.violations.append(f"{key}: {len(found)} message records (one expected)")
        elif key in answered and answered[key] != found[0]["sid"]:
            result.violations.append(f"{key}: answered {answered[key]}, stored {found[0]['sid']}")
    for body, keys in sorted(gateway_bodies.items()):
        if len(keys) > 1:
            result.violations.append(f"{body}: reached the gateway as {len(keys)} messages {keys}")
        result.retransmitted += gateway_counts.get(body, 0) > 1
    events = _message_events(callbacks, result)
    for sid, record in sorted(records.items()):
        status, body = record["status"], record["body"]
        if status not in MESSAGE_FINAL:
            result.violations.append(f"{sid} ({body}): left {status!r}")
            continue
        result.sent += status == "sent"
        result.failed += status == "failed"
        if status == "sent" and body not in gateway_bodies:
            result.violations.append(f"{sid} ({body}): sent but never reached the gateway")
        result.violations += _check_events(sid, body, status, events.get(sid, {}))
    return result


def _message_events(
    callbacks: Iterable[Recorded], result: MessageCheck
) -> dict[str, dict[int, Mapping[str, str]]]:
    """MessageSid -> SequenceNumber -> the event (the first of identical repeats)."""
    events: dict[str, dict[int, Mapping[str, str]]] = {}
    for request in callbacks:
        sid = request.params.get("MessageSid", "")
        sequence = int(request.params.get("SequenceNumber", "-1"))
        known = events.setdefault(sid, {})
        if sequence not in known:
            known[sequence] = request.params
        elif known[sequence] == request.params:
            result.redelivered += 1
        else:
            result.violations.append(f"{sid}: two different events with SequenceNumber {sequence}")
    return events


def _check_events(
    sid: str, body: str, status: str, events: Mapping[int, Mapping[str, str]]
) -> list[str]:
    sequences = sorted(events)
    if sequences != list(range(len(sequences))):
        return [f"{sid} ({body}): callback SequenceNumbers {sequences}"]
    statuses = [events[s].get("MessageStatus", "") for s in sequences]
    if not statuses or statuses[-1] != status:
        return [f"{sid} ({body}): callbacks {statuses}, record {status!r}"]
    ranks = [MESSAGE_ORDER.get(s, -1) for s in statuses]
    if -1 in ranks or any(a >= b for a, b in itertools.pairwise(ranks)):
        return [f"{sid} ({body}): callbacks out of order {statuses}"]
    return []
