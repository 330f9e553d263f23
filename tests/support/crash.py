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

A request counts as delivered once the webhook server recorded it: the server has then read the
whole request and answers 200. If the daemon died before reading that 200, it owes the event
again after the restart (at-least-once), so the invariants hold all the same.
"""

from __future__ import annotations

import itertools
import re
import subprocess
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
