"""A raw UDP SIP callee on loopback: the far end of the calls the API places in the crash test.

Every INVITE (first copies and retransmissions) is answered ``200 OK`` with an SDP answer at
once, an ACK is taken silently, a BYE gets ``200 OK``. Each INVITE is recorded (Call-ID, the To
user, arrival time), so a test can tell one call from a call dialled twice: :meth:`SipCallee.
calls` groups the arrivals by To user into distinct Call-IDs. Plain string handling, a thread of
its own (the MESSAGE gateway's machinery, ``support/sip_gateway.py``).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

from support.rawsip import Message
from support.sip_gateway import MessageGateway

SDP = (
    "v=0\r\no=callee 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@dataclass(frozen=True)
class Invite:
    call_id: str
    to_user: str
    at: float = field(default_factory=time.time)


class SipCallee(MessageGateway):
    """``with SipCallee() as callee: … callee.uri … callee.calls()``."""

    def __init__(self) -> None:
        super().__init__()
        self.invites: list[Invite] = []

    def calls(self) -> dict[str, set[str]]:
        """To user -> the distinct Call-IDs it was dialled with (more than one: dialled twice)."""
        found: dict[str, set[str]] = {}
        with self._lock:
            for invite in self.invites:
                found.setdefault(invite.to_user, set()).add(invite.call_id)
        return found

    def _received(self, message: Message, data: bytes, source: tuple[str, int]) -> None:
        method = message.method
        if method == "INVITE":
            to = message.header("To") or message.header("t") or ""
            user = to.split("sip:", 1)[-1].split("@", 1)[0]
            with self._lock:
                self.invites.append(Invite(message.header("Call-ID") or "", user))
            self._send(_response(message, SDP, self.port), source)
        elif method == "BYE":
            self._send(_response(message, "", self.port), source)

    def _send(self, data: bytes, source: tuple[str, int]) -> None:
        self._seq += 1
        heapq.heappush(self._due, (time.time(), self._seq, data, source))


def _response(request: Message, sdp: str, port: int) -> bytes:
    lines = ["SIP/2.0 200 OK"]
    for key, value in request.headers:
        lowered = key.lower()
        if lowered in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            lines.append(f"{key}: {value}")
        elif lowered in ("to", "t"):
            lines.append(f"{key}: {value};tag=callee" if "tag=" not in value else f"{key}: {value}")
    lines.append(f"Contact: <sip:callee@127.0.0.1:{port}>")
    if sdp:
        lines.append("Content-Type: application/sdp")
    body = sdp.encode()
    head = "\r\n".join([*lines, f"Content-Length: {len(body)}", "", ""]).encode()
    return head + body
