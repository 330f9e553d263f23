"""DTMF: RFC 4733 telephone-events (receive and send) and SIP INFO bodies, sans-I/O.

An event is one key press: every packet of it carries the same RTP timestamp (the event start)
and a growing duration; the last three carry the end bit. A digit is reported once, on the first
end packet of its timestamp; the redundant end packets and late retransmissions are ignored.
An event whose end packets were all lost is reported when the next event (or a long gap) shows
it is over.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

EVENT_DIGITS: Final = "0123456789*#ABCD"
PAUSE_KEYS: Final = {"w": 0.5, "W": 1.0}
EVENT = struct.Struct("!BBH")
END_REPEATS: Final = 3
DEFAULT_VOLUME: Final = 10  # -dBm0
SAMPLES_PER_PACKET: Final = 160


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte RFC 4733 payload."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None

    def pack(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return EVENT.pack(self.event, flags, min(self.duration, 0xFFFF))


def parse_event(payload: bytes) -> TelephoneEvent | None:
    if len(payload) < EVENT.size:
        return None
    event, flags, duration = EVENT.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


class DtmfReceiver:
    """Turns a stream of telephone-event packets into digits, each reported exactly once."""

    def __init__(self, memory: int = 16) -> None:
        self._reported: deque[int] = deque(maxlen=memory)  # event timestamps already reported
        self._open: tuple[int, str] | None = None  # (timestamp, digit) seen without an end

    def feed(self, timestamp: int, payload: bytes) -> list[str]:
        """Digits completed by this packet (usually none or one)."""
        event = parse_event(payload)
        if event is None or event.digit is None or timestamp in self._reported:
            return []
        digits = []
        if self._open is not None and self._open[0] != timestamp:
            digits.append(self._report(*self._open))  # its end packets never came
        if event.end:
            digits.append(self._report(timestamp, event.digit))
        else:
            self._open = (timestamp, event.digit)
        return digits

    def flush(self) -> list[str]:
        """Report an event still open (called after a gap in events)."""
        if self._open is None:
            return []
        return [self._report(*self._open)]

    def _report(self, timestamp: int, digit: str) -> str:
        self._reported.append(timestamp)
        if self._open is not None and self._open[0] == timestamp:
            self._open = None
        return digit


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of an outgoing event, relative to the event's start timestamp."""

    payload: bytes
    marker: bool


def event_packets(
    digit: str, duration_ms: int = 100, volume: int = DEFAULT_VOLUME
) -> list[EventPacket]:
    """The packets of one key press, one per 20 ms: updates, then the end packet three times."""
    event = EVENT_DIGITS.index(digit.upper())
    total = max(SAMPLES_PER_PACKET, duration_ms * 8)
    packets: list[EventPacket] = []
    duration = SAMPLES_PER_PACKET
    while duration < total:
        payload = TelephoneEvent(event, False, volume, duration).pack()
        packets.append(EventPacket(payload, marker=not packets))
        duration += SAMPLES_PER_PACKET
    end = TelephoneEvent(event, True, volume, total).pack()
    packets.extend(EventPacket(end, marker=not packets) for _ in range(END_REPEATS))
    return packets


def valid_digits(text: str) -> bool:
    """Whether ``text`` is a Play ``digits`` string: keys, ``w`` and ``W``."""
    return all(ch.upper() in EVENT_DIGITS or ch in PAUSE_KEYS for ch in text)


_SIGNAL_NAMES: Final = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


def _signal_digit(value: str) -> str | None:
    value = value.strip()
    value = _SIGNAL_NAMES.get(value, value)
    if len(value) == 1 and value.upper() in EVENT_DIGITS:
        return value.upper()
    return None


def parse_info_dtmf(content_type: str, body: bytes) -> str | None:
    """The digit of a SIP INFO ``application/dtmf-relay`` or ``application/dtmf`` body."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if kind == "application/dtmf":
        return _signal_digit(text)
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip().lower() == "signal":
                return _signal_digit(value)
    return None
