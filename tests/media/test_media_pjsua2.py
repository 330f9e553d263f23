"""MediaSession against pjsua2 (an independent RTP stack), signalled by a hand-written INVITE.

pjsua2 answers in a subprocess, records what it hears to a WAV and sends RFC 4733 DTMF; the test
plays a tone and collects the digits. No daemon: this checks the media engine alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rcmlrouter.media import audio
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.player import ClipSource, SilenceSource
from rcmlrouter.media.session import MediaParams, MediaSession
from rcmlrouter.sip.sdp import build_offer, parse_offer
from support.tones import dominant_frequency

pytest.importorskip("pjsua2")
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "pjsua_media.py"


class Peer:
    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "answer", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        while line and not line.startswith("{"):  # pjlib's start-up lines
            line = self.process.stdout.readline()
        ready = json.loads(line)
        self.port = int(ready["port"])

    def result(self) -> dict[str, object]:
        out, err = self.process.communicate(timeout=20)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert lines, err[-2000:]
        return dict(json.loads(lines[-1]))


@pytest.fixture
def sip() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def request(method: str, peer_port: int, sock: socket.socket, call_id: str, cseq: int,
            to_tag: str = "", body: bytes = b"") -> bytes:  # fmt: skip
    local = sock.getsockname()[1]
    lines = [
        f"{method} sip:pjsua@127.0.0.1:{peer_port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport",
        "Max-Forwards: 70",
        f"From: <sip:test@127.0.0.1:{local}>;tag=t1",
        f"To: <sip:pjsua@127.0.0.1:{peer_port}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method if method != 'ACK' else 'ACK'}",
        f"Contact: <sip:test@127.0.0.1:{local}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def final_response(sock: socket.socket) -> tuple[str, bytes]:
    while True:
        data, _ = sock.recvfrom(65535)
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"SIP/2.0 1"):
            return head.decode(), body


def to_tag(head: str) -> str:
    line = next(line for line in head.split("\r\n") if line.lower().startswith("to:"))
    return line.split("tag=")[1].split(";")[0]


async def connect(peer: Peer, sip: socket.socket, rtp_port: int) -> tuple[MediaSession, str, str]:
    """INVITE pjsua2 with our offer, ACK its answer, open the MediaSession it agreed to."""
    call_id = uuid.uuid4().hex
    offer = build_offer("127.0.0.1", rtp_port)
    sip.sendto(request("INVITE", peer.port, sip, call_id, 1, body=offer), ("127.0.0.1", peer.port))
    head, body = final_response(sip)
    assert head.startswith("SIP/2.0 200"), head
    tag = to_tag(head)
    sip.sendto(request("ACK", peer.port, sip, call_id, 1, tag), ("127.0.0.1", peer.port))
    answer = parse_offer(body)
    codec = answer.codec_name(answer.payload_types[0]) or ""
    params = MediaParams(
        codec, answer.payload_types[0], answer.telephone_event_pt, answer.connection_ip,
        answer.port, answer.direction,
    )  # fmt: skip
    return await MediaSession.open("127.0.0.1", rtp_port, params, MediaClock()), call_id, tag


def bye(peer: Peer, sip: socket.socket, call_id: str, tag: str) -> dict[str, object]:
    sip.sendto(request("BYE", peer.port, sip, call_id, 2, tag), ("127.0.0.1", peer.port))
    return peer.result()


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as recorded:
        rate = recorded.getframerate()
        return np.frombuffer(recorded.readframes(recorded.getnframes()), "<i2"), rate


def loud_frames(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Per 20 ms frame: whether any sample is loud."""
    size = rate // 50
    loud = np.abs(pcm.astype(np.float64)) > 3000
    return loud[: len(loud) // size * size].reshape(-1, size).any(axis=1)


async def test_pjsua2_hears_the_tone_and_sends_digits(
    sip: socket.socket, rtp_port: int, tmp_path: Path
) -> None:
    heard = tmp_path / "heard.wav"
    peer = Peer(["--record", str(heard), "--dtmf", "42#", "--dtmf-at", "2.6", "--seconds", "10"])
    session, call_id, tag = await connect(peer, sip, rtp_port)
    try:
        await session.play(SilenceSource(0.5))
        await session.play(ClipSource(audio.tone(1000.0, 2.0, amplitude=0.4)))
        digits = await session.collect_digits(3, "", 3.0)
    finally:
        session.close()
    result = bye(peer, sip, call_id, tag)
    assert digits == "42#", result
    assert result["codec"] in ("PCMU", "PCMA")
    pcm, rate = read_wav(heard)
    frames = loud_frames(pcm, rate)
    assert frames.sum() / 50 == pytest.approx(2.0, rel=0.05)
    start = int(np.argmax(frames)) * (rate // 50)
    assert dominant_frequency(pcm[start : start + rate], rate) == pytest.approx(1000, abs=5)


async def test_pjsua2_plays_into_a_recording(
    sip: socket.socket, rtp_port: int, tmp_path: Path
) -> None:
    said = tmp_path / "said.wav"
    with wave.open(str(said), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(audio.tone(600.0, 1.5, amplitude=0.4).pcm.astype("<i2").tobytes())
    peer = Peer(["--play", str(said), "--seconds", "10"])
    session, call_id, tag = await connect(peer, sip, rtp_port)
    try:
        result = await session.record(
            tmp_path / "rec.wav", max_length=8, silence_timeout=1.0, beep=False
        )
    finally:
        session.close()
    bye(peer, sip, call_id, tag)
    assert result.reason == "timeout"
    pcm, rate = read_wav(result.path)
    assert rate == 8000
    assert loud_frames(pcm, rate).sum() / 50 == pytest.approx(1.5, rel=0.05)
    start = int(np.argmax(loud_frames(pcm, rate))) * 160
    assert dominant_frequency(pcm[start : start + 8000]) == pytest.approx(600, abs=5)
