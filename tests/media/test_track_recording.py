"""TrackRecording (sans I/O but for its file): frames of two tracks on one 20 ms timeline, under
a clock the test moves."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from rcmlrouter.media import g711
from rcmlrouter.media.track_recording import FRAME, LAG_SLOTS, TrackRecording


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(value: int) -> bytes:
    return g711.encode(np.full(FRAME, value, np.int16), "PCMU")


def read(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        return w.getnchannels(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def levels(pcm: np.ndarray) -> list[int]:
    """One value per 20 ms frame (the frames are constant)."""
    return [int(pcm[i]) for i in range(0, len(pcm), FRAME)]


def q(value: int) -> int:
    """``value`` as G.711 carries it."""
    return int(g711.decode(frame(value), "PCMU")[0])


def test_both_tracks_are_summed_frame_by_frame_and_gaps_are_silence(tmp_path: Path) -> None:
    clock = Clock()
    rec = TrackRecording(tmp_path / "r.wav", 60, "both", "mono", clock)
    for i in range(12):
        clock.now = 100.0 + 0.02 * i
        rec.inbound(frame(1000), "PCMU")
        if not 2 <= i <= 8:  # 140 ms without outbound frames: silence on that track
            rec.outbound(frame(2000), "PCMU")
    clock.now = 100.0 + 0.02 * 14  # two slots with nothing at all before the end
    assert rec.close() == pytest.approx(0.28)
    channels, pcm = read(tmp_path / "r.wav")
    assert channels == 1
    both, inbound = q(1000) + q(2000), q(1000)
    assert levels(pcm) == [both] * 2 + [inbound] * 7 + [both] * 3 + [0, 0]


def test_dual_puts_inbound_first_and_outbound_second(tmp_path: Path) -> None:
    clock = Clock()
    rec = TrackRecording(tmp_path / "r.wav", 60, "both", "dual", clock)
    rec.inbound(frame(1000), "PCMU")
    rec.outbound(frame(-2000), "PCMU")
    clock.now += 0.02
    rec.close()
    channels, pcm = read(tmp_path / "r.wav")
    assert channels == 2
    assert levels(pcm[0::2]) == [q(1000)] and levels(pcm[1::2]) == [q(-2000)]


def test_one_track_only_ignores_the_other(tmp_path: Path) -> None:
    clock = Clock()
    rec = TrackRecording(tmp_path / "r.wav", 60, "outbound", "mono", clock)
    rec.inbound(frame(1000), "PCMU")
    rec.outbound(frame(2000), "PCMU")
    clock.now += 0.02
    rec.close()
    assert levels(read(tmp_path / "r.wav")[1]) == [q(2000)]


def test_jitter_keeps_frames_in_sequence_and_a_long_pause_resyncs(tmp_path: Path) -> None:
    clock = Clock()
    rec = TrackRecording(tmp_path / "r.wav", 60, "inbound", "dual", clock)
    # three frames arrive in one burst (jitter): they take consecutive slots, not one slot
    for value in (1000, 2000, 3000):
        rec.inbound(frame(value), "PCMU")
    clock.now += 0.5  # then nothing for half a second: the next frame goes to the clock's slot
    rec.inbound(frame(4000), "PCMU")
    clock.now += 0.02
    rec.close()
    first = levels(read(tmp_path / "r.wav")[1][0::2])
    assert first[:3] == [q(1000), q(2000), q(3000)]
    assert first[3:25] == [0] * 22 and first[25] == q(4000) and len(first) == 26


def test_frames_are_written_as_the_call_goes_and_length_is_capped(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "r.wav"
    rec = TrackRecording(path, 1.0, "both", "mono", clock)  # at most 50 slots
    for i in range(100):
        clock.now = 100.0 + 0.02 * i
        rec.inbound(frame(500), "PCMU")
        rec.outbound(frame(500), "PCMU")
        if i == LAG_SLOTS + 5:
            assert rec.written == pytest.approx(0.1)  # slots behind the lag are written out
    assert rec.close() == pytest.approx(1.0)
    assert len(read(path)[1]) == 50 * FRAME


def test_unknown_track_or_channels_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TrackRecording(tmp_path / "r.wav", 60, "sideways")
    with pytest.raises(ValueError):
        TrackRecording(tmp_path / "r.wav", 60, "both", "quad")
