"""A call's media for media-stream tests: a MediaSession on loopback RTP whose caller is a UDP
socket in the test (it speaks µ-law RTP and records what it hears), the hooks a stream reports
to, and stream factories (tests/streams/)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.media import rtp
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.session import MediaSession
from rcmlrouter.streams.connector import StreamConnector
from rcmlrouter.streams.media_stream import MediaStream, StreamSpec
from support.stream_agent import StreamAgent

EVENT_PT = 101


class Caller(asyncio.DatagramProtocol):
    """The caller's RTP socket: what it hears, with arrival times."""

    def __init__(self) -> None:
        self.heard: list[tuple[float, rtp.RtpPacket]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = rtp.parse(data)
        if packet is not None:
            self.heard.append((time.monotonic(), packet))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def audio_since(self, since: float) -> list[tuple[float, bytes]]:
        return [(at, p.payload) for at, p in self.heard if at >= since and p.payload_type == 0]


@dataclass
class Hooks:
    events: list[tuple[str, int | None]] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)

    def started(self) -> None:
        self.events.append(("started", None))

    def stopped(self) -> None:
        self.events.append(("stopped", None))

    def failed(self, error_code: int, message: str) -> None:
        self.events.append(("failed", error_code))

    def notify(self, error_code: int, message: str) -> None:
        self.notes.append((error_code, message))


@dataclass
class Call:
    session: MediaSession
    caller: Caller
    clock: MediaClock
    seq: int = 0

    def speak(self, payload: bytes) -> None:
        """One RTP packet from the caller."""
        self.seq += 1
        packet = rtp.RtpPacket(0, False, self.seq, self.seq * 160, 1234, payload)
        assert self.caller.transport is not None
        self.caller.transport.sendto(
            rtp.pack(packet), ("127.0.0.1", self.session.endpoint.local_port)
        )

    def press(self, digit: str) -> None:
        self.session.receive_digit(digit)


CONNECTORS: list[StreamConnector] = []


def connector(**kwargs: object) -> StreamConnector:
    book = kwargs.pop("book", None)
    book = AddressBook() if book is None else book
    options: dict[str, object] = {"allow_insecure": True, "connect_timeout": 2.0}
    options.update(kwargs)
    made = StreamConnector(book, **options)  # type: ignore[arg-type]
    CONNECTORS.append(made)
    return made


def spec(url: str, **kwargs: object) -> StreamSpec:
    values: dict[str, object] = {
        "stream_sid": "MZ" + "1" * 32,
        "url": url,
        "name": "agent",
        "account_sid": "AC1",
        "call_sid": "CA1",
        "bidirectional": True,
        "parameters": {"who": "test"},
        "headers": {"X-Twilio-Signature": "sig"},
    }
    values.update(kwargs)
    return StreamSpec(**values)  # type: ignore[arg-type]


async def start(
    call: Call, agent: StreamAgent, **kwargs: object
) -> tuple[MediaStream, Hooks, asyncio.Task[object]]:
    hooks = Hooks()
    options = {k: v for k, v in kwargs.items() if k in ("buffer_seconds",)}
    spec_kwargs = {k: v for k, v in kwargs.items() if k not in options and k != "conn"}
    stream = MediaStream(
        spec(agent.url, **spec_kwargs),
        kwargs.get("conn") or connector(),  # type: ignore[arg-type]
        call.session,
        hooks,
        **options,  # type: ignore[arg-type]
    )
    task: asyncio.Task[object] = asyncio.create_task(stream.run())
    return stream, hooks, task


async def agent_with(behaviour: object) -> StreamAgent:
    return await StreamAgent(behaviour=behaviour).start()  # type: ignore[arg-type]
