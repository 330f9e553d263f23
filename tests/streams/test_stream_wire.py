"""The Media Streams wire protocol (sans-I/O) and the agent-audio buffer."""

from __future__ import annotations

import base64
import json

import pytest

from rcmlrouter.streams.playout import FRAME_BYTES, AgentAudio, AgentPlayout
from rcmlrouter.streams.wire import (
    AgentClear,
    AgentMark,
    AgentMedia,
    ProtocolViolation,
    StreamMessages,
    read_agent_message,
    tracks_of,
)

SID = "MZ" + "0" * 32


def test_messages_are_twilios_in_order() -> None:
    messages = StreamMessages(SID)
    assert json.loads(messages.connected()) == {
        "event": "connected",
        "protocol": "Call",
        "version": "1.0.0",
    }
    start = json.loads(messages.start("AC1", "CA1", ["inbound"], {"a": "1"}))
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": SID,
        "start": {
            "streamSid": SID,
            "accountSid": "AC1",
            "callSid": "CA1",
            "tracks": ["inbound"],
            "customParameters": {"a": "1"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    media = json.loads(messages.media("inbound", 40, b"\xff" * 160))
    assert media == {
        "event": "media",
        "sequenceNumber": "2",
        "streamSid": SID,
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "40",
            "payload": base64.b64encode(b"\xff" * 160).decode(),
        },
    }
    assert json.loads(messages.media("outbound", 41, b"\x00"))["media"]["chunk"] == "1"
    assert json.loads(messages.media("inbound", 60, b"\x00"))["media"]["chunk"] == "2"
    dtmf = json.loads(messages.dtmf("5"))
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"}
    assert dtmf["sequenceNumber"] == "5"
    assert json.loads(messages.mark("m"))["mark"] == {"name": "m"}
    stop = json.loads(messages.stop("AC1", "CA1"))
    assert stop["stop"] == {"accountSid": "AC1", "callSid": "CA1"}
    assert stop["sequenceNumber"] == "7" and stop["streamSid"] == SID


def test_tracks() -> None:
    assert tracks_of("inbound_track") == ("inbound",)
    assert tracks_of("outbound_track") == ("outbound",)
    assert tracks_of("both_tracks") == ("inbound", "outbound")


def test_agent_messages() -> None:
    payload = base64.b64encode(b"\x01\x02\x03").decode()
    media = {"event": "media", "streamSid": SID, "media": {"payload": payload}}
    assert read_agent_message(json.dumps(media)) == AgentMedia(b"\x01\x02\x03")
    mark = {"event": "mark", "streamSid": SID, "mark": {"name": "x"}}
    assert read_agent_message(json.dumps(mark).encode()) == AgentMark("x")
    assert read_agent_message('{"event":"clear","streamSid":"MZ"}') == AgentClear()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"event": "hello"}',
        '{"event": "media"}',
        '{"event": "media", "media": {"payload": "***"}}',
        '{"event": "mark", "mark": {}}',
        '{"event": "mark", "mark": {"name": 5}}',
    ],
)
def test_bad_agent_messages_are_protocol_violations(raw: str) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        read_agent_message(raw)
    assert caught.value.error_code == 31924


def _audio(max_frames: int = 100) -> tuple[AgentAudio, list[str]]:
    echoed: list[str] = []
    return AgentAudio(max_frames, echoed.append), echoed


def test_audio_is_cut_into_frames_and_marks_come_back_after_it() -> None:
    audio, echoed = _audio()
    audio.add_mark("first")  # nothing queued before it: at once
    assert echoed == ["first"]
    audio.add_media(b"\x01" * 400)  # 2.5 frames
    audio.add_mark("after-400")  # the half frame is padded and played before the mark
    audio.add_media(b"\x02" * 160)
    audio.add_mark("after-560")
    frames = [audio.next_frame() for _ in range(4)]
    assert [len(f or b"") for f in frames] == [160, 160, 160, 160]
    assert frames[2] == b"\x01" * 80 + b"\xff" * 80
    assert echoed == ["first", "after-400", "after-560"]
    assert audio.next_frame() is None


def test_a_part_frame_waits_one_tick_for_more() -> None:
    audio, _ = _audio()
    audio.add_media(b"\x01" * 100)
    assert audio.next_frame() is None  # held: the rest may come within 20 ms
    audio.add_media(b"\x01" * 60)
    assert audio.next_frame() == b"\x01" * 160
    audio.add_media(b"\x03" * 10)
    assert audio.next_frame() is None
    assert audio.next_frame() == b"\x03" * 10 + b"\xff" * 150  # waited a tick: played padded


def test_clear_drops_audio_at_once_and_echoes_its_marks_in_order() -> None:
    audio, echoed = _audio()
    audio.add_media(b"\x01" * 1600)
    audio.add_mark("a")
    audio.add_media(b"\x01" * 1600)
    audio.add_mark("b")
    assert audio.next_frame() is not None
    audio.clear()
    assert echoed == ["a", "b"]
    assert audio.next_frame() is None
    assert audio.buffered_frames == 0


def test_overflow_drops_the_newest_audio_and_says_so_once_per_burst() -> None:
    audio, echoed = _audio(max_frames=10)
    overflows: list[int] = []
    audio.on_overflow = lambda: overflows.append(audio.dropped_frames)
    audio.add_media(b"\x01" * FRAME_BYTES * 8)
    audio.add_media(b"\x02" * FRAME_BYTES * 5)  # 2 fit
    audio.add_media(b"\x03" * FRAME_BYTES * 5)  # none fit
    audio.add_mark("kept")
    assert audio.buffered_frames == 10
    assert audio.dropped_frames == 8
    assert overflows == [3]
    played = [audio.next_frame() for _ in range(10)]
    assert played[-1] == b"\x02" * FRAME_BYTES  # the oldest audio plays on, continuous
    assert echoed == ["kept"]


def test_playout_yields_silence_between_bursts_in_the_calls_codec() -> None:
    audio, _ = _audio()
    playout = AgentPlayout(audio)
    frames = playout.frames("PCMA")
    assert next(frames) == b"\xd5" * 160  # A-law silence
    audio.add_media(b"\xff" * 160)  # µ-law silence: A-law silence after transcoding
    assert next(frames) == b"\xd5" * 160
    playout.finish()
    assert next(frames, None) is None
