"""The crash round of POST Calls (issue 18): a poster placing calls through the Twilio API while
the daemon is killed, and the checker of what must hold after the restart.

The guarantee checked (README, "Outbound calls"): from the 201 on, a call is never lost and
never dialled twice. Each call the API answered 201 (or a retry with the same Idempotency-Key
answered, after the restart) ends with a final record and its final status callback; a call
queued at the kill (never dialled) is dialled after the restart; a call whose INVITE had left
before the kill is never dialled again (each To number reaches the callee under at most one
Call-ID); every callback of one call carries the same SequenceNumber-ordered events (at least
once: a 2xx lost to the kill is sent again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.crash import MessagePoster
from support.webhooks import Recorded

CALL_FINAL = ("completed", "failed", "busy", "no-answer", "canceled")


class CallPoster(MessagePoster):
    """POSTs ``count`` calls at ``rate`` per second (``MessagePoster``'s thread and retries):
    call ``i`` goes to ``+1555000iiii`` with the Idempotency-Key ``call-iiiii``."""

    @staticmethod
    def key(index: int) -> str:
        return f"call-{index:05d}"

    @staticmethod
    def to_number(key: str) -> str:
        return f"+1555000{int(key.split('-')[1]):04d}"

    def _post(self, client: httpx.Client, key: str) -> None:
        twiml = "<Response><Hangup/></Response>"
        data = {"To": self.to_number(key), "From": "+15105555555", "Twiml": twiml,
                "StatusCallback": self.callback}  # fmt: skip
        try:
            response = client.post("/Calls.json", data=data, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            self.unanswered.append(key)
            return
        if response.status_code == 201:
            self.answered[key] = response.json()["sid"]
        else:
            self.refused[key] = response.status_code


@dataclass
class CallCheck:
    violations: list[str] = field(default_factory=list)
    completed: int = 0
    failed: int = 0
    redelivered: int = 0


def check_api_calls(
    answered: Mapping[str, str],
    records: Mapping[str, dict[str, Any]],
    dialled: Mapping[str, set[str]],
    callbacks: Iterable[Recorded],
) -> CallCheck:
    """``answered``: key -> sid of every 201; ``records``: the API's call records by sid;
    ``dialled``: To user -> the distinct Call-IDs the callee saw; ``callbacks``: every status
    callback the webhook server recorded."""
    check = CallCheck()
    by_sid: dict[str, list[dict[str, str]]] = {}
    for event in callbacks:
        by_sid.setdefault(event.params.get("CallSid", ""), []).append(event.params)
    for key, sid in sorted(answered.items()):
        record = records.get(sid)
        if record is None:
            check.violations.append(f"{key} {sid}: answered 201, no record (lost)")
            continue
        status = record["status"]
        if status not in CALL_FINAL:
            check.violations.append(f"{key} {sid}: still {status}")
            continue
        check.completed += status == "completed"
        check.failed += status == "failed"
        calls = dialled.get(CallPoster.to_number(key).lstrip("+"), set())
        calls |= dialled.get(CallPoster.to_number(key), set())
        if len(calls) > 1:
            check.violations.append(f"{key} {sid}: dialled {len(calls)} times")
        if status == "completed" and not calls:
            check.violations.append(f"{key} {sid}: completed but never reached the callee")
        events = by_sid.get(sid, [])
        finals = [e for e in events if e.get("CallStatus") in CALL_FINAL]
        if not finals:
            check.violations.append(f"{key} {sid}: {status} without its final callback")
            continue
        if {e["CallStatus"] for e in finals} != {status}:
            check.violations.append(f"{key} {sid}: callbacks say {finals}, record {status}")
        if len({e["SequenceNumber"] for e in events}) != len({e["SequenceNumber"] for e in finals}):
            check.violations.append(f"{key} {sid}: events beyond the default (completed)")
        check.redelivered += len(finals) - 1
    unknown = set(records) - set(answered.values())
    for sid in sorted(unknown):
        check.violations.append(f"{sid}: a call nobody was answered for (created twice?)")
    return check
