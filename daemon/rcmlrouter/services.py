"""The shared components that calls and messages use, built once by the composition root.

Complete when built and never changed: what needs the SIP endpoint (which is built after the
call supervisor and the message handler, as its request handler needs them) is attached to it
explicitly (``CallSupervisor.attach``, ``SmsSender.attach``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.conference.registry import ConferenceRegistry
from rcmlrouter.config import Config
from rcmlrouter.directory import Directory
from rcmlrouter.journal import BatchWriter
from rcmlrouter.media.cache import AudioCache
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.ports import RtpPortPool
from rcmlrouter.media.tts import SpeechSynthesizer
from rcmlrouter.rcml.fetch import RcmlFetcher
from rcmlrouter.rcml.ports import MessageSender
from rcmlrouter.routing.table import RoutingSnapshot
from rcmlrouter.store.records import Notification, Recording
from rcmlrouter.store.stream_records import StreamRecord
from rcmlrouter.streams.connector import StreamConnector


@dataclass(slots=True)
class MediaServices:
    """What the media verbs share: the one media clock, ``<Play>``'s audio cache, ``<Say>``'s
    speech synthesizer, the media streams' WebSocket client, and where recordings go
    (``recordings_dir/{AC}/{RE}.wav`` and a store row through ``save_recording``)."""

    clock: MediaClock
    audio: AudioCache
    speech: SpeechSynthesizer
    recordings_dir: Path
    save_recording: Callable[[Recording], Awaitable[None]]
    streams: StreamConnector | None = None
    """Media streams' WebSocket client (``<Connect><Stream>``…); None: streams fail (31920)."""


@dataclass(frozen=True, slots=True)
class Services:
    """The shared components calls and messages use (built by the composition root)."""

    config: Config
    snapshot: RoutingSnapshot
    directory: Directory
    fetcher: RcmlFetcher
    outbox: CallbackOutbox
    notifications: BatchWriter[Notification]
    stream_records: BatchWriter[StreamRecord]
    """Media streams' rows (``calls/call_streams.py``), written in the order they were made."""
    ports: RtpPortPool
    admin_account_sid: str
    sms: MessageSender
    """Sends ``<Sms>`` / ``<Message>`` messages (``messaging.outbound.SmsSender``)."""
    media: MediaServices | None = None
    """``<Play>``, ``<Say>``, ``<Record>``…; None where no call media is needed (tools, tests)."""
    conferences: ConferenceRegistry | None = None
    """``<Dial><Conference>``'s rooms and mixer; None where there is no call media."""
