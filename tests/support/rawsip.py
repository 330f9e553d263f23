"""A tiny hand-driven SIP UAC over UDP for exact retransmission tests (lost ACK, INVITE retx).

It builds the messages by hand and reads responses with plain string handling, independent of
the daemon's own parser.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    raw: str

    @property
    def status(self) -> int | None:
        parts = self.start.split(" ", 2)
        return int(parts[1]) if parts[0] == "SIP/2.0" else None

    @property
    def method(self) -> str | None:
        return None if self.start.startswith("SIP/2.0") else self.start.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def parse(data: bytes) -> Message:
    text = data.decode(errors="replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return Message(lines[0], headers, text)


SDP = (
    "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


class RawUac:
    def __init__(self, port: int, number: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", port)
        self.number = number
        self.call_id = uuid.uuid4().hex
        self.branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        self.tag = uuid.uuid4().hex[:8]

    def close(self) -> None:
        self.sock.close()

    def send(self, text: str) -> None:
        self.sock.sendto(text.encode(), self.target)

    def invite(self) -> str:
        body = SDP
        return (
            f"INVITE sip:{self.number}@127.0.0.1:{self.target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch={self.branch};rport\r\n"
            f"From: <sip:raw@127.0.0.1:{self.local}>;tag={self.tag}\r\n"
            f"To: <sip:{self.number}@127.0.0.1:{self.target[1]}>\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:raw@127.0.0.1:{self.local}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        )

    def ack(self, to_header: str) -> str:
        return (
            f"ACK sip:{self.number}@127.0.0.1:{self.target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch=z9hG4bK{uuid.uuid4().hex[:16]}\r\n"
            f"From: <sip:raw@127.0.0.1:{self.local}>;tag={self.tag}\r\nTo: {to_header}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )

    def reply_ok(self, request: Message) -> str:
        lines = ["SIP/2.0 200 OK"]
        for key, value in request.headers:
            if key.lower() in ("via", "from", "to", "call-id", "cseq", "v", "f", "t", "i"):
                lines.append(f"{key}: {value}")
        return "\r\n".join([*lines, "Content-Length: 0", "", ""])

    def receive(self, seconds: float) -> list[Message]:
        """Everything that arrives within ``seconds``."""
        return self.receive_until(lambda _message: False, seconds)

    def receive_until(self, predicate, seconds: float) -> list[Message]:  # type: ignore[no-untyped-def]
        out: list[Message] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            message = parse(data)
            out.append(message)
            if predicate(message):
                break
        return out
