"""Parts for the call wing's unit tests (tests/calls): captured INVITEs from tests/data/sip,
number rows, and recording stand-ins for the outbox and the notification writer (pure-unit
tests of the call wing's decisions; the end-to-end tests use the real ones)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.calls.call_state import CallState, read_facts
from rcmlrouter.calls.dialed_leg import DialedLeg
from rcmlrouter.calls.in_dialog import InDialog
from rcmlrouter.calls.wiring import Handover
from rcmlrouter.rcml.model import DialSip, Document, Pause
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.wire import parse_message
from rcmlrouter.store.records import CallRecord, IncomingNumber, Notification, OutboxEvent

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"


def invite(name: str) -> SipRequest:
    message = parse_message((DATA / name).read_bytes())
    assert isinstance(message, SipRequest)
    return message


def number(**fields: Any) -> IncomingNumber:
    base: dict[str, Any] = {
        "sid": "PN1",
        "account_sid": "AC1",
        "organization_sid": "OR1",
        "phone_number": "+15105555555",
        "friendly_name": "(510) 555-5555",
        "is_sip": False,
        "number_type": "local",
        "beta": False,
    }
    base.update(fields)
    return IncomingNumber(**base)


def routed_state(name: str = "carrier_diversion_invite.sip", **fields: Any) -> CallState:
    """A call from the captured INVITE ``name``, routed to :func:`number` (``fields``)."""
    state = CallState("CA" + "1" * 32, 1_700_000_000.0, read_facts(invite(name), "to"), "AC1")
    state.number = number(**fields)
    state.auth_token = "token"
    return state


@dataclass
class Commit:
    call: CallRecord | None
    events: list[OutboxEvent]


@dataclass
class RecordingOutbox:
    """Records what the call wing commits (``CallbackOutbox``'s commit / enqueue)."""

    commits: list[Commit] = field(default_factory=list)

    event = staticmethod(CallbackOutbox.event)

    def commit(
        self, *, call: CallRecord | None = None, events: Sequence[OutboxEvent] = ()
    ) -> asyncio.Future[None]:
        self.commits.append(Commit(call, list(events)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def enqueue(
        self,
        call_sid: str,
        account_sid: str,
        sequence: int,
        url: str,
        method: str,
        params: Mapping[str, str],
    ) -> None:
        self.commit(events=[self.event(call_sid, account_sid, sequence, url, method, params)])

    @property
    def events(self) -> list[OutboxEvent]:
        return [event for commit in self.commits for event in commit.events]


@dataclass
class RecordingNotifications:
    """Records notifications (``BatchWriter[Notification]``'s add)."""

    added: list[Notification] = field(default_factory=list)

    def add(self, item: Notification) -> None:
        self.added.append(item)

    @property
    def codes(self) -> list[int]:
        return [n.error_code for n in self.added]


class AnsweredCall:
    """An answered ``OutgoingCall`` stand-in: records its in-dialog requests (each answered
    200 with ``remote_sdp``); BYE ends it as ``local-bye``; its progress callback is kept."""

    def __init__(self, call_id: str = "leg-1") -> None:
        loop = asyncio.get_running_loop()
        self.ended: asyncio.Future[str] = loop.create_future()
        self.answered = True
        self.local_sdp: bytes | None = b"v=0 ours"
        self.remote_sdp: bytes | None = b"v=0 theirs"
        self.call_id = call_id
        self.byes = 0
        self.sent: list[str] = []
        self.progress: Any = None
        self.result: asyncio.Future[Any] = loop.create_future()
        self.result.set_result(SimpleNamespace(status=200, headers=[]))

    def on_in_dialog_request(self, callback: Any) -> None: ...

    def on_reinvite(self, callback: Any) -> None: ...

    def on_progress(self, callback: Any) -> None:
        self.progress = callback

    def send_in_dialog(self, method: str, headers: Any, body: bytes = b"") -> Any:
        self.sent.append(method)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(status=200, body=self.remote_sdp))
        return done

    async def hangup(self, reason: str | None = None) -> None:
        self.byes += 1
        if not self.ended.done():
            self.ended.set_result("local-bye")


def handover(outbox: Any, document: Document | None = None) -> tuple[Handover, AnsweredCall]:
    """The callee of a bridge handed over after the caller transferred (``ReferTarget`` 200)."""
    state = routed_state()
    call = AnsweredCall()
    leg = DialedLeg(DialSip("sip:bob@example.net"), state, "+14155550100", outbox)
    leg.call = call  # type: ignore[assignment]
    leg.answer_time = leg.start_time
    state.outbound_call_sid = leg.sid
    state.transfer_params = {"ReferTarget": "200"}
    in_dialog = InDialog(call, state)  # type: ignore[arg-type]
    document = document or Document((Pause(30),))
    return Handover(leg, in_dialog, state, document, {"ReferTarget": "200"}), call
