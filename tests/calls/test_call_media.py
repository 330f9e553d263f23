"""CallMedia (calls/call_media.py) on loopback with a fake SIP call: the SDP it answers or offers,
the late-offer answer taken from the ACK, the caller's re-INVITE (hold) through the call's
InDialog, SIP INFO key presses."""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rcmlrouter.calls import call_media as call_media_module
from rcmlrouter.calls.call_media import CallMedia
from rcmlrouter.calls.in_dialog import InDialog
from rcmlrouter.errors import OverloadError
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.ports import RtpPortPool
from rcmlrouter.sip.sdp import build_offer, parse_offer


def free_even_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port % 2 == 0 and port < 65000:
            return int(port)
    raise RuntimeError("no even port")


class FakeCall:
    def __init__(self, sdp: bytes | None) -> None:
        self.remote_sdp = sdp
        self.local_sdp: bytes | None = None
        self.answered = True
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.reinvite: Any = None
        self.in_dialog: Any = None
        self.sent: list[tuple[str, bytes]] = []

    def on_reinvite(self, callback: Any) -> None:
        self.reinvite = callback

    def on_in_dialog_request(self, callback: Any) -> None:
        self.in_dialog = callback

    def send_in_dialog(self, method: str, headers: Any, body: bytes) -> asyncio.Future[Any]:
        self.sent.append((method, body))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(status=200, body=build_answer_sdp(42000)))
        return done


class FakeRequest:
    def __init__(self, method: str, body: bytes, content_type: str) -> None:
        headers = [("Content-Type", content_type)] if content_type else []
        self.request = SimpleNamespace(
            method=method,
            body=body,
            get=lambda name: dict(headers).get(name),
        )
        self.responses: list[tuple[int, bytes]] = []

    def respond(self, status: int, reason: str | None = None, **kwargs: Any) -> None:
        self.responses.append((status, kwargs.get("body", b"")))


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Any]:
    port = free_even_port()
    media = SimpleNamespace(clock=MediaClock())
    yield SimpleNamespace(
        config=SimpleNamespace(media=SimpleNamespace(rtp_address="127.0.0.1", idle_keepalive=0.0)),
        ports=RtpPortPool(port, port + 2),
        media=media,
    )
    media.clock.close()


def call_media(call: FakeCall, services: Any) -> CallMedia:
    state: Any = SimpleNamespace()
    in_dialog = InDialog(call, state)  # type: ignore[arg-type]
    media = CallMedia(call, in_dialog, state, SimpleNamespace(services=services))  # type: ignore[arg-type]
    in_dialog.own_digits(media)
    return media


def offer(port: int, direction: str = "sendrecv") -> bytes:
    return build_offer("127.0.0.1", port).replace(b"a=sendrecv", f"a={direction}".encode())


async def test_answers_an_offer_and_follows_a_hold_reinvite(services: Any) -> None:
    call = FakeCall(offer(40000))
    media = call_media(call, services)
    answer = parse_offer(await media.local_sdp())
    assert answer.port == media.port and answer.codec_name(answer.payload_types[0]) == "PCMU"
    assert media.session is not None and media.session.params.remote_port == 40000
    assert services.ports.in_use == 1
    held = FakeRequest("INVITE", offer(40002, "sendonly"), "application/sdp")
    call.reinvite(held)
    status, body = held.responses[0]
    assert status == 200 and b"a=recvonly" in body
    assert media.session.sender.on_hold and media.session.params.remote_port == 40002
    resumed = FakeRequest("INVITE", offer(40002), "application/sdp")
    call.reinvite(resumed)
    assert not media.session.sender.on_hold
    call.ended.set_result("remote-bye")
    await asyncio.sleep(0)
    assert media.session.closed.done()
    for _ in range(3):  # the port goes back once the transports have closed its sockets
        await asyncio.sleep(0)
    assert services.ports.in_use == 0


async def test_late_offer_takes_the_answer_from_the_ack(services: Any) -> None:
    call = FakeCall(None)
    media = call_media(call, services)
    ours = parse_offer(await media.local_sdp())
    assert ours.payload_types == [0, 8, 101]
    assert media.session is not None and media.session.sender.on_hold  # nowhere to send yet
    call.remote_sdp = build_answer_sdp(41000)
    media.on_answered()
    assert media.session.params.remote_port == 41000 and media.session.params.codec == "PCMA"
    assert not media.session.sender.on_hold
    media.close()


def build_answer_sdp(port: int) -> bytes:
    return (
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    ).encode()


async def test_sip_info_key_presses_reach_gather(services: Any) -> None:
    call = FakeCall(offer(40000))
    media = call_media(call, services)
    await media.local_sdp()
    for digit in "42#":
        info = FakeRequest(
            "INFO", f"Signal={digit}\r\nDuration=160\r\n".encode(), "application/dtmf-relay"
        )
        call.in_dialog(info)
        assert info.responses == [(200, b"")]
    other = FakeRequest("INFO", b"5", "application/json")  # not a key press: 200, no digit
    call.in_dialog(other)
    assert other.responses == [(200, b"")]
    assert await media.collect_digits(0, "#", 1.0) == "42"
    media.close()


async def test_after_a_bridge_the_next_verb_offers_our_media_again(services: Any) -> None:
    call = FakeCall(offer(40000))
    media = call_media(call, services)
    await media.local_sdp()
    assert media.session is not None
    media.suspend()
    assert media.session.sender.on_hold
    relayed: list[Any] = []
    media.in_dialog.own_reinvites(relayed.append)  # the bridge takes the caller's re-INVITEs
    call.reinvite(FakeRequest("INVITE", offer(40004), "application/sdp"))
    assert len(relayed) == 1
    await media.resume()
    assert call.sent == []  # nothing until a media verb needs it
    await media.pause(0.02)
    [(method, body)] = call.sent
    assert method == "INVITE" and parse_offer(body).port == media.port
    assert media.session.params.remote_port == 42000 and not media.session.sender.on_hold
    assert call.local_sdp == body
    again = FakeRequest("INVITE", offer(40006), "application/sdp")
    call.reinvite(again)  # the media owns the re-INVITEs again
    assert len(relayed) == 1 and again.responses[0][0] == 200
    assert media.session.params.remote_port == 40006
    media.close()


async def test_a_finished_call_media_is_freed_without_the_cycle_collector(services: Any) -> None:
    """The media and the call's InDialog point at each other while the call runs; closing
    both lets reference counting free them (the cycle collector runs rarely on a big heap)."""
    call = FakeCall(offer(40000))
    media = call_media(call, services)
    await media.local_sdp()  # it owns the re-INVITEs now
    in_dialog = media.in_dialog
    freed = weakref.ref(media)
    call.ended.set_result("remote-bye")  # the call's end closes the media
    for _ in range(3):  # the port goes back once the transports have closed its sockets
        await asyncio.sleep(0)
    assert services.ports.in_use == 0
    gc.disable()
    try:
        in_dialog.close()
        call.reinvite = call.in_dialog = None  # IncomingCall.finish drops its callbacks
        del media, in_dialog
        assert freed() is None
    finally:
        gc.enable()


async def test_a_port_another_process_holds_is_skipped_not_a_503(services: Any) -> None:
    """The pool's one port pair is held by a stranger, then let go: the first call is refused
    only because the range is used up (no other port), the next one gets it."""
    now = [100.0]
    port = services.ports.acquire()
    services.ports = RtpPortPool(port, port + 2, clock=lambda: now[0])
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", port + 1))  # the odd neighbour
    media = call_media(FakeCall(offer(40000)), services)
    with pytest.raises(OverloadError, match="no free RTP port"):
        await media.local_sdp()
    assert services.ports.busy == 1 and services.ports.in_use == 0
    stranger.close()
    now[0] += 1.0  # with nothing else free, a port found busy a second ago is tried again
    again = call_media(FakeCall(offer(40000)), services)
    assert parse_offer(await again.local_sdp()).port == port
    again.close()


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.EMFILE, "out of file descriptors"), (errno.EADDRNOTAVAIL, "RTP bind failed")],
)
async def test_a_bind_error_not_about_the_port_is_a_503_at_once(
    services: Any, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    """No file descriptors left (the held-calls benchmark's 88 refusals at ~9,900 calls under
    a 20,000-descriptor limit) is not a busy port: refused at once, the port kept free."""
    tries: list[int] = []

    def bind(address: str, port: int) -> Any:
        tries.append(port)
        raise OSError(code, "no")

    monkeypatch.setattr(call_media_module, "bind_pair", bind)
    media = call_media(FakeCall(offer(40000)), services)
    with pytest.raises(OverloadError, match=reason):
        await media.local_sdp()
    assert len(tries) == 1 and services.ports.busy == 0 and services.ports.in_use == 0
