"""G.711 against the ITU-T reference values and round-trip error bounds."""

from __future__ import annotations

import numpy as np
import pytest

from rcmlrouter.media import g711

ALL = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_ulaw_reference_points() -> None:
    assert g711.encode(np.array([0], np.int16), "PCMU") == b"\xff"
    assert g711.decode_value(0xFF, "PCMU") == 0
    assert g711.decode_value(0x7F, "PCMU") == 0
    assert g711.decode_value(0x80, "PCMU") == 32124
    assert g711.decode_value(0x00, "PCMU") == -32124
    assert g711.encode(np.array([32767, -32768], np.int16), "PCMU") == b"\x80\x00"
    # the first segment: steps of 8 (16-bit scale) from 0
    assert [g711.decode_value(0xFF - i, "PCMU") for i in range(4)] == [0, 8, 16, 24]


def test_alaw_reference_points() -> None:
    assert g711.encode(np.array([0], np.int16), "PCMA") == b"\xd5"
    assert g711.decode_value(0xD5, "PCMA") == 8
    assert g711.decode_value(0x55, "PCMA") == -8
    assert g711.decode_value(0xAA, "PCMA") == 32256
    assert g711.decode_value(0x2A, "PCMA") == -32256
    assert g711.encode(np.array([32767, -32768], np.int16), "PCMA") == b"\xaa\x2a"


@pytest.mark.parametrize("codec", g711.CODECS)
def test_every_code_decodes_and_encodes_back(codec: str) -> None:
    codes = bytes(range(256))
    back = g711.encode(g711.decode(codes, codec), codec)
    differ = [code for code, again in zip(codes, back, strict=True) if code != again]
    assert differ == ([0x7F] if codec == "PCMU" else [])  # µ-law's negative zero becomes +0


@pytest.mark.parametrize("codec", g711.CODECS)
def test_round_trip_error_is_within_half_a_step(codec: str) -> None:
    decoded = g711.decode(g711.encode(ALL, codec), codec).astype(np.int32)
    error = np.abs(decoded - ALL.astype(np.int32))
    magnitude = np.abs(ALL.astype(np.int32))
    loud = magnitude > 1024
    assert np.all(error[loud] <= magnitude[loud] / 16 + 8)  # 4 mantissa bits: <= 1/32 + rounding
    assert np.all(error[~loud] <= 64)
    assert np.all(np.diff(decoded[magnitude < 32000]) >= 0)  # monotonic


@pytest.mark.parametrize("codec", g711.CODECS)
def test_snr_of_a_tone_is_telephone_grade(codec: str) -> None:
    t = np.arange(8000) / 8000
    tone = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    decoded = g711.decode(g711.encode(tone, codec), codec).astype(np.float64)
    noise = decoded - tone
    snr = 10 * np.log10(np.sum(tone.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr > 35


def test_decode_bytes_matches_decode_and_silence() -> None:
    payload = bytes(range(256))
    for codec in g711.CODECS:
        as_bytes = np.frombuffer(g711.decode_bytes(payload, codec), "<i2")
        assert np.array_equal(as_bytes, g711.decode(payload, codec))
        assert not g711.decode(g711.silence(codec, 160), codec).any() or codec == "PCMA"
        assert np.all(np.abs(g711.decode(g711.silence(codec, 160), codec)) <= 8)
