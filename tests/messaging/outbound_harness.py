"""Shared pieces of the outbound-message tests: fake outbox and notifications, a SIPp UAS."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import support.sipp_uas
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.config import Config, SmsConfig
from rcmlrouter.messaging.outbound import SmsSender
from rcmlrouter.sip.endpoint import IncomingCall, IncomingRequest, SipEndpoint
from rcmlrouter.sip.timers import TimerConfig
from rcmlrouter.store.records import MessageRecord, Notification, OutboxEvent
from support.sipp_uas import SIPP
from support.sipp_uas import free_port as free_port  # re-exported for the tests

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FAST = TimerConfig(t1=0.025, t2=0.1, t4=0.1)  # Timer F = 64*T1 = 1.6 s
requires_sipp = pytest.mark.skipif(SIPP is None, reason="sipp is not installed")


@dataclass
class FakeOutbox:
    """Records what would be committed; every commit is durable at once."""

    messages: list[MessageRecord] = field(default_factory=list)
    events: list[OutboxEvent] = field(default_factory=list)

    event = staticmethod(CallbackOutbox.event)  # the real event builder

    def commit(
        self,
        *,
        call: object = None,
        message: MessageRecord | None = None,
        events: Sequence[OutboxEvent] = (),
    ) -> asyncio.Future[None]:
        if message is not None:
            self.messages.append(message)
        self.events.extend(events)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def statuses(self, sid: str) -> list[str]:
        return [m.status for m in self.messages if m.sid == sid]


@dataclass
class FakeNotifications:
    items: list[Notification] = field(default_factory=list)

    def add(self, item: Notification) -> None:
        self.items.append(item)


class NoCalls:
    """The endpoint's request handler: these tests only send."""

    def on_invite(self, call: IncomingCall) -> None:
        call.reject(603)

    def on_request(self, request: IncomingRequest) -> None:
        request.respond(501)


@dataclass
class Sending:
    """A started endpoint and the sender under test with its fakes."""

    endpoint: SipEndpoint
    sender: SmsSender
    outbox: FakeOutbox
    notifications: FakeNotifications


async def start_sender(**sms: Any) -> Sending:
    endpoint = SipEndpoint(NoCalls(), timers=FAST)
    await endpoint.start(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"])
    config = dataclasses.replace(Config(), sms=SmsConfig(**sms))
    outbox, notifications = FakeOutbox(), FakeNotifications()
    sender = SmsSender(config, outbox, notifications, endpoint)  # type: ignore[arg-type]
    return Sending(endpoint, sender, outbox, notifications)


class SippUas(support.sipp_uas.SippUas):
    """SIPp as the MESSAGE gateway (scenarios in tests/messaging/scenarios)."""

    scenarios = SCENARIOS
