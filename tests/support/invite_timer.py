"""Time every call's setup: INVITEs at a steady rate over one UDP socket, each timed to its
final response (a failover measurement: which calls waited on a dead node, and until when).

``InviteTimer(port, "63001").start(rate=20)`` sends one INVITE every 1/rate s in a thread, with
a fresh Call-ID, and a second thread reads the answers: a final response ends the call's clock
(a non-2xx one is ACKed, as RFC 3261 §17.1.1.3 asks; use a number that answers ``<Reject/>``
so no dialog is left behind). ``stop()`` waits for the calls still open and returns one
:class:`CallTiming` per INVITE. Independent of the daemon's own SIP code: plain strings.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from dataclasses import dataclass


@dataclass
class CallTiming:
    call_id: str
    sent: float  # time.monotonic() when the INVITE left
    answered: float | None = None  # when its final response arrived
    status: int | None = None

    @property
    def setup(self) -> float | None:
        """Seconds from INVITE to final response (None: none came)."""
        return None if self.answered is None else self.answered - self.sent


class InviteTimer:
    def __init__(self, port: int, number: str) -> None:
        self.target = ("127.0.0.1", port)
        self.number = number
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()[1]
        self.calls: dict[str, CallTiming] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, rate: float) -> InviteTimer:
        for target in (self._read, lambda: self._send(rate)):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, grace: float = 5.0) -> list[CallTiming]:
        """Stop sending; wait up to ``grace`` s for open calls; every call, in sending order."""
        self._stop.set()
        self._threads[1].join()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(
            c.answered is None for c in list(self.calls.values())
        ):
            time.sleep(0.05)
        self.sock.close()
        return sorted(self.calls.values(), key=lambda c: c.sent)

    def _send(self, rate: float) -> None:
        gap = 1.0 / rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            call_id = uuid.uuid4().hex
            self.calls[call_id] = CallTiming(call_id, time.monotonic())
            self.sock.sendto(self._invite(call_id).encode(), self.target)
            next_at += gap
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _read(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(65535)
            except OSError:  # closed by stop()
                return
            now = time.monotonic()
            head = data.decode(errors="replace").split("\r\n\r\n", 1)[0].split("\r\n")
            if not head[0].startswith("SIP/2.0 "):
                continue
            status = int(head[0].split(" ", 2)[1])
            headers = _headers(head[1:])
            call = self.calls.get(headers.get("call-id", ""))
            if call is None or status < 200 or not headers.get("cseq", "").endswith("INVITE"):
                continue
            if call.answered is None:
                call.answered, call.status = now, status
            if status >= 300:
                with contextlib.suppress(OSError):
                    self.sock.sendto(self._ack(call.call_id, headers["to"]).encode(), self.target)

    def _common(self, call_id: str) -> str:
        return (
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local};branch=z9hG4bK{call_id[:20]};rport\r\n"
            f"From: <sip:timer@127.0.0.1:{self.local}>;tag={call_id[:8]}\r\n"
            f"Call-ID: {call_id}\r\nMax-Forwards: 70\r\n"
        )

    def _invite(self, call_id: str) -> str:
        uri = f"sip:{self.number}@127.0.0.1:{self.target[1]}"
        return (
            f"INVITE {uri} SIP/2.0\r\n{self._common(call_id)}To: <{uri}>\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:timer@127.0.0.1:{self.local}>\r\nContent-Length: 0\r\n\r\n"
        )

    def _ack(self, call_id: str, to: str) -> str:
        uri = f"sip:{self.number}@127.0.0.1:{self.target[1]}"
        return (
            f"ACK {uri} SIP/2.0\r\n{self._common(call_id)}To: {to}\r\nCSeq: 1 ACK\r\n"
            "Content-Length: 0\r\n\r\n"
        )


def _headers(lines: list[str]) -> dict[str, str]:
    compact = {"i": "call-id", "t": "to", "v": "via", "f": "from"}
    found: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        found.setdefault(compact.get(key, key), value.strip())
    return found


@dataclass
class Failover:
    """What a node's death cost the calls sent after it (``waited``: setup ≥ ``slow`` s)."""

    waited: int  # calls sent after the kill that waited on the dead node
    outage: float  # kill -> the last call that waited was sent (0: none waited)
    after: int  # calls sent after the kill
    failed: int  # calls without a 2xx-6xx final response, or answered 5xx


def failover(calls: list[CallTiming], killed: float, slow: float) -> Failover:
    later = [c for c in calls if c.sent >= killed]
    waited = [c for c in later if c.setup is None or c.setup >= slow]
    failed = [c for c in later if c.status is None or 500 <= c.status < 600]
    outage = max((c.sent for c in waited), default=killed) - killed
    return Failover(len(waited), outage, len(later), len(failed))
