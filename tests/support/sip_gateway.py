"""A raw UDP SIP MESSAGE receiver on loopback: the SMS gateway of the API message tests.

It records every MESSAGE that arrives (Call-ID, CSeq, From tag, Via branch, body, arrival time)
and answers each one (first copies and retransmissions alike) with ``status`` after ``delay``
seconds, from a thread of its own, with plain string handling independent of the daemon's
parser. :meth:`MessageGateway.messages` groups the arrivals by (Call-ID, CSeq): one message,
however often it was retransmitted.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from support.rawsip import Message, parse


@dataclass(frozen=True)
class Arrival:
    call_id: str
    cseq: str
    from_tag: str
    branch: str
    body: str
    source: tuple[str, int]
    at: float = field(default_factory=time.time)

    @property
    def key(self) -> tuple[str, str]:
        """What makes it one message: Call-ID and CSeq (RFC 3428 §7)."""
        return (self.call_id, self.cseq)


def _param(value: str, name: str) -> str:
    for part in value.split(";")[1:]:
        key, _, found = part.strip().partition("=")
        if key.lower() == name:
            return found
    return ""


class MessageGateway:
    """``with MessageGateway() as gw: … gw.uri … gw.arrivals()``.

    ``status`` (default 202) and ``delay`` may be a value or a function of the arrival.
    """

    def __init__(
        self,
        status: int | Callable[[Arrival], int] = 202,
        delay: float | Callable[[Arrival], float] = 0.0,
    ) -> None:
        self.status = status
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self._arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def uri(self) -> str:
        """The ``[sms] gateway`` value."""
        return f"sip:127.0.0.1:{self.port}"

    def __enter__(self) -> MessageGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def messages(self) -> dict[tuple[str, str], list[Arrival]]:
        """Arrivals grouped by (Call-ID, CSeq), in first-arrival order."""
        grouped: dict[tuple[str, str], list[Arrival]] = {}
        for arrival in self.arrivals():
            grouped.setdefault(arrival.key, []).append(arrival)
        return grouped

    def bodies(self) -> dict[str, set[tuple[str, str]]]:
        """Body -> the distinct (Call-ID, CSeq) it arrived under (more than one: sent twice)."""
        found: dict[str, set[tuple[str, str]]] = {}
        for arrival in self.arrivals():
            found.setdefault(arrival.body, set()).add(arrival.key)
        return found

    def wait_for(self, count: int, timeout: float = 10.0) -> dict[tuple[str, str], list[Arrival]]:
        """Wait until ``count`` distinct messages arrived (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages()) < count:
            time.sleep(0.02)
        return self.messages()

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._send_due()
            wait = 0.05 if not self._due else max(0.0, min(0.05, self._due[0][0] - time.time()))
            self.sock.settimeout(wait or 0.001)
            try:
                data, source = self.sock.recvfrom(65535)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return
            self._received(parse(data), data, source)

    def _received(self, message: Message, data: bytes, source: tuple[str, int]) -> None:
        if message.method != "MESSAGE":
            return
        body = data.split(b"\r\n\r\n", 1)[1].decode(errors="replace") if b"\r\n\r\n" in data else ""
        arrival = Arrival(
            message.header("Call-ID") or message.header("i") or "",
            message.header("CSeq") or "",
            _param(message.header("From") or message.header("f") or "", "tag"),
            _param(message.header("Via") or message.header("v") or "", "branch"),
            body,
            source,
        )
        with self._lock:
            self._arrivals.append(arrival)
        status = self.status(arrival) if callable(self.status) else self.status
        delay = self.delay(arrival) if callable(self.delay) else self.delay
        self._seq += 1
        heapq.heappush(self._due, (time.time() + delay, self._seq, _reply(message, status), source))

    def _send_due(self) -> None:
        now = time.time()
        while self._due and self._due[0][0] <= now:
            _, _, reply, source = heapq.heappop(self._due)
            with contextlib.suppress(OSError):  # the sender is gone (a killed daemon)
                self.sock.sendto(reply, source)


REASONS = {200: "OK", 202: "Accepted", 404: "Not Found", 488: "Not Acceptable Here"}


def _reply(request: Message, status: int) -> bytes:
    lines = [f"SIP/2.0 {status} {REASONS.get(status, 'Response')}"]
    for key, value in request.headers:
        lowered = key.lower()
        if lowered in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            lines.append(f"{key}: {value}")
        elif lowered in ("to", "t"):
            lines.append(f"{key}: {value};tag=gw" if "tag=" not in value else f"{key}: {value}")
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()
