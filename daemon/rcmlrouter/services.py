"""The shared components that calls and messages use, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.config import Config
from rcmlrouter.directory import Directory
from rcmlrouter.journal import BatchWriter
from rcmlrouter.media.ports import RtpPortPool
from rcmlrouter.rcml.execute import MessageSender
from rcmlrouter.rcml.fetch import RcmlFetcher
from rcmlrouter.routing.table import RoutingSnapshot
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.store.base import Notification


@dataclass(slots=True)
class Services:
    """The shared components calls and messages use (built by the composition root)."""

    config: Config
    snapshot: RoutingSnapshot
    directory: Directory
    fetcher: RcmlFetcher
    outbox: CallbackOutbox
    notifications: BatchWriter[Notification]
    ports: RtpPortPool
    admin_account_sid: str
    sms: MessageSender
    """Sends ``<Sms>`` / ``<Message>`` messages (``messaging.outbound.SmsSender``)."""
    endpoint: SipEndpoint | None = None
    """Places ``<Dial>`` legs; set once SIP is built (the endpoint needs the supervisor)."""


def rfc2822(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=False).replace("-0000", "+0000")
