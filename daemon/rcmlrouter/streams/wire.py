"""Twilio's Media Streams wire protocol, sans I/O: the JSON text frames both sides exchange.

:class:`StreamMessages` writes what we send, in order: ``connected`` (no sequence number), then
``start`` once, then ``media`` / ``dtmf`` / ``mark`` and finally ``stop``. Every message after
``connected`` carries ``sequenceNumber`` (a string counting from "1") and ``streamSid``.
``media`` chunks count per track from "1"; ``timestamp`` is milliseconds since the stream
started (a string); ``payload`` is 20 ms of base64 µ-law.

:func:`read_agent_message` reads what a bidirectional stream's agent may send: ``media`` (base64
µ-law of any length), ``mark`` (a name) and ``clear``. Anything else raises
:class:`ProtocolViolation` with Twilio's error code (31924: Stream - WebSocket - Protocol Error);
the stream goes on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import orjson

PROTOCOL_ERROR: Final = 31924
MEDIA_FORMAT: Final = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
TRACK_NAMES: Final = {"inbound_track": "inbound", "outbound_track": "outbound"}
"""``track`` attribute value → the track name in ``start.tracks`` and ``media.track``."""


class ProtocolViolation(ValueError):
    """A message from the agent that is not one of ``media``, ``mark``, ``clear``."""

    error_code = PROTOCOL_ERROR


@dataclass(frozen=True, slots=True)
class AgentMedia:
    payload: bytes  # µ-law, any length


@dataclass(frozen=True, slots=True)
class AgentMark:
    name: str


@dataclass(frozen=True, slots=True)
class AgentClear:
    pass


AgentMessage = AgentMedia | AgentMark | AgentClear


def tracks_of(track: str) -> tuple[str, ...]:
    """``inbound_track`` | ``outbound_track`` | ``both_tracks`` → the tracks named on the wire."""
    if track == "both_tracks":
        return ("inbound", "outbound")
    return (TRACK_NAMES[track],)


class StreamMessages:
    """The messages one stream sends, numbered in the order they are written."""

    __slots__ = ("_chunks", "_sid_tail", "sequence", "stream_sid")

    def __init__(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid
        self.sequence = 0
        self._chunks = {"inbound": 0, "outbound": 0}
        self._sid_tail = f'"streamSid":"{stream_sid}"}}'

    def _next(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    @staticmethod
    def connected() -> str:
        return '{"event":"connected","protocol":"Call","version":"1.0.0"}'

    def start(
        self,
        account_sid: str,
        call_sid: str,
        tracks: Sequence[str],
        parameters: Mapping[str, str],
    ) -> str:
        message = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": account_sid,
                "callSid": call_sid,
                "tracks": list(tracks),
                "customParameters": dict(parameters),
                "mediaFormat": MEDIA_FORMAT,
            },
            "streamSid": self.stream_sid,
        }
        return orjson.dumps(message).decode()

    def media(self, track: str, timestamp_ms: int, payload: bytes) -> str:
        """One 20 ms µ-law frame of ``track`` (``inbound`` or ``outbound``). Built by hand: this
        runs 50 times a second per track and stream."""
        self._chunks[track] = chunk = self._chunks[track] + 1
        encoded = base64.b64encode(payload).decode("ascii")
        return (
            f'{{"event":"media","sequenceNumber":"{self._next()}","media":{{"track":"{track}",'
            f'"chunk":"{chunk}","timestamp":"{timestamp_ms}","payload":"{encoded}"}},'
            + self._sid_tail
        )

    def dtmf(self, digit: str) -> str:
        message = {
            "event": "dtmf",
            "sequenceNumber": self._next(),
            "dtmf": {"track": "inbound_track", "digit": digit},
            "streamSid": self.stream_sid,
        }
        return orjson.dumps(message).decode()

    def mark(self, name: str) -> str:
        message = {
            "event": "mark",
            "sequenceNumber": self._next(),
            "mark": {"name": name},
            "streamSid": self.stream_sid,
        }
        return orjson.dumps(message).decode()

    def stop(self, account_sid: str, call_sid: str) -> str:
        message = {
            "event": "stop",
            "sequenceNumber": self._next(),
            "stop": {"accountSid": account_sid, "callSid": call_sid},
            "streamSid": self.stream_sid,
        }
        return orjson.dumps(message).decode()


def read_agent_message(text: str | bytes) -> AgentMessage:
    """One text frame from the agent; :class:`ProtocolViolation` says what is wrong with it."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolViolation("not a JSON object")
    event = message.get("event")
    if event == "media":
        return AgentMedia(_payload(message.get("media")))
    if event == "mark":
        mark = message.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str) or not name:
            raise ProtocolViolation("mark without mark.name")
        return AgentMark(name)
    if event == "clear":
        return AgentClear()
    raise ProtocolViolation(f"unsupported event {str(event)[:40]!r} (media, mark or clear)")


def _payload(media: object) -> bytes:
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str):
        raise ProtocolViolation("media without media.payload")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolViolation("media.payload is not base64") from exc
