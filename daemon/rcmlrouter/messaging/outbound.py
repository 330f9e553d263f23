"""Outbound SIP MESSAGE: the sender behind ``<Sms>`` / ``<Message>`` (work in progress)."""

from __future__ import annotations

from rcmlrouter.rcml.execute import SmsOrigin, SmsResult
from rcmlrouter.rcml.model import Sms
from rcmlrouter.store.base import new_sid


class SmsSender:
    """Sends messages as SIP MESSAGE requests; implements ``rcml.execute.MessageSender``."""

    async def send(self, verb: Sms, origin: SmsOrigin) -> SmsResult:
        return SmsResult(new_sid("SM"), "failed", 30008)
