"""The mix: everyone hears the others and never themselves, saturated, codecs mixed."""

from __future__ import annotations

import numpy as np

from rcmlrouter.conference.mixer import FRAME, mix
from rcmlrouter.media import g711


def frames(*values: int) -> np.ndarray:
    return np.array([[v] * FRAME for v in values], dtype=np.int32)


def test_each_row_hears_its_room_minus_itself() -> None:
    # rooms: [0, 1, 2] and [3, 4]
    spoken = frames(100, 20, 3, 1000, 7)
    starts = np.array([0, 3], dtype=np.intp)
    room_of = np.array([0, 0, 0, 1, 1], dtype=np.intp)
    heard, totals = mix(spoken, starts, room_of)
    assert heard[:, 0].tolist() == [23, 103, 120, 7, 1000]
    assert totals[:, 0].tolist() == [123, 1007]
    assert heard.dtype == np.int16


def test_a_loud_room_saturates_instead_of_wrapping() -> None:
    spoken = frames(30000, 30000, 30000, -30000, -30000, -30000)
    starts = np.array([0, 3], dtype=np.intp)
    room_of = np.array([0, 0, 0, 1, 1, 1], dtype=np.intp)
    heard, _ = mix(spoken, starts, room_of)
    assert heard[:3, 0].tolist() == [32767] * 3
    assert heard[3:, 0].tolist() == [-32768] * 3


def test_a_whisper_reaches_only_its_target_and_announcements_everyone() -> None:
    spoken = frames(10, 20, 0)  # row 2 is a coach: its voice is not in "spoken"
    whisper = frames(0, 500, 0)  # …but row 1 hears it
    announcement = frames(1)
    heard, totals = mix(
        spoken, np.array([0]), np.array([0, 0, 0]), whisper=whisper, announcement=announcement
    )
    assert heard[:, 0].tolist() == [21, 511, 31]
    assert totals[0, 0] == 31  # the recording has the announcement, not the whisper


def test_pcmu_and_pcma_mix_through_linear_samples() -> None:
    t = np.arange(FRAME) / 8000
    a = (8000 * np.sin(2 * np.pi * 400 * t)).astype(np.int16)
    b = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    decoded_a = g711.decode(g711.encode(a, "PCMU"), "PCMU").astype(np.int32)
    decoded_b = g711.decode(g711.encode(b, "PCMA"), "PCMA").astype(np.int32)
    spoken = np.stack([decoded_a, decoded_b])
    heard, _ = mix(spoken, np.array([0]), np.array([0, 0]))
    # the PCMU row hears the PCMA speaker and the other way round, within G.711's error
    assert np.max(np.abs(heard[0].astype(int) - b)) < 300
    assert np.max(np.abs(heard[1].astype(int) - a)) < 300


def test_room_sums_by_blocks_agree_with_reduceat_for_any_sizes() -> None:
    from rcmlrouter.conference.mixer import room_sums

    rng = np.random.default_rng(7)
    spoken = rng.integers(-9000, 9000, (23, FRAME)).astype(np.int32)
    for starts in ([0], [0, 1], [0, 2, 5, 8, 12, 16, 20, 22], [0, 4, 8, 9, 10, 14]):
        index = np.array(starts, dtype=np.intp)
        assert (room_sums(spoken, index) == np.add.reduceat(spoken, index, axis=0)).all()
