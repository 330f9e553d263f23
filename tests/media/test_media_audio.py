"""WAV decoding (every format we accept) and resampling to 8 kHz mono."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from rcmlrouter.errors import MediaError
from rcmlrouter.media import audio, g711
from support.tones import dominant_frequency, make_wav, sine


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_pcm16_any_rate_and_channels_to_8k_mono(rate: int, channels: int) -> None:
    signal = sine(440, 1.0, rate)
    samples = np.stack([signal] * channels, axis=1) if channels == 2 else signal
    clip = audio.decode_wav(make_wav(samples, rate, channels))
    assert abs(clip.duration - 1.0) < 0.002
    assert dominant_frequency(clip.pcm) == pytest.approx(440, abs=2)
    rms = np.sqrt(np.mean(clip.pcm[800:-800].astype(np.float64) ** 2)) / 32768
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_pcm8_unsigned() -> None:
    clip = audio.decode_wav(make_wav(sine(1000, 0.5, 8000), 8000, width=1))
    assert dominant_frequency(clip.pcm) == pytest.approx(1000, abs=3)
    assert abs(int(np.max(clip.pcm)) - 16384) < 400


def test_stereo_is_mixed_down() -> None:
    left, right = sine(500, 1, 8000), sine(1500, 1, 8000)
    clip = audio.decode_wav(make_wav(np.stack([left, right], axis=1), 8000, 2))
    spectrum = np.abs(np.fft.rfft(clip.pcm.astype(np.float64)))
    assert spectrum[500] > 1000 * spectrum[1000] and spectrum[1500] > 1000 * spectrum[1000]


def test_downsampling_removes_what_8k_cannot_carry() -> None:
    """A 6 kHz tone at 44.1 kHz would alias to 2 kHz; the low-pass keeps it out (< -50 dB)."""
    clip = audio.decode_wav(make_wav(sine(6000, 1, 44100), 44100))
    reference = audio.decode_wav(make_wav(sine(2000, 1, 44100), 44100))
    alias = np.sqrt(np.mean(clip.pcm[400:-400].astype(np.float64) ** 2))  # not the edges
    passband = np.sqrt(np.mean(reference.pcm.astype(np.float64) ** 2))
    assert 20 * np.log10(alias / passband) < -50


def g711_wav(codec: str, pcm: np.ndarray) -> bytes:
    payload = g711.encode(pcm, codec)
    tag = 7 if codec == "PCMU" else 6
    fmt = struct.pack("<HHIIHH", tag, 1, 8000, 8000, 1, 8) + b"\x00\x00"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<I", 4) + struct.pack("<I", len(payload))
    body += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("codec", g711.CODECS)
def test_g711_wav(codec: str) -> None:
    pcm = audio.to_pcm(sine(700, 0.5, 8000))
    clip = audio.decode_wav(g711_wav(codec, pcm))
    assert len(clip.pcm) == 4000
    assert np.max(np.abs(clip.pcm.astype(np.int32) - pcm)) < 600


def test_streamed_wav_with_oversized_data_length() -> None:
    """espeak-ng --stdout writes 0x7ffff000-ish sizes; read what is there."""
    data = bytearray(make_wav(sine(300, 0.25, 22050), 22050))
    data[40:44] = struct.pack("<I", 0x7FFFF000)
    data[4:8] = struct.pack("<I", 0x7FFFF024)
    clip = audio.decode_wav(bytes(data))
    assert abs(clip.duration - 0.25) < 0.002


def test_float_and_extensible() -> None:
    samples = sine(900, 0.2, 16000).astype("<f4").tobytes()
    guid = (3).to_bytes(2, "little") + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 64000, 4, 32)
    fmt += struct.pack("<HHI", 22, 32, 4) + guid
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    clip = audio.decode_wav(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert dominant_frequency(clip.pcm) == pytest.approx(900, abs=5)


@pytest.mark.parametrize(
    "data",
    [b"", b"ID3\x03 mp3 data here....", b"RIFF\x04\x00\x00\x00WAVE", b"RIFF\x00\x00\x00\x00AVI "],
)
def test_not_a_wav(data: bytes) -> None:
    with pytest.raises(MediaError) as raised:
        audio.decode_wav(data)
    assert raised.value.error_code == 12300


def test_clip_encodes_whole_frames_once() -> None:
    clip = audio.tone(1000, 0.21)
    encoded = clip.encoded("PCMU")
    assert len(encoded) == 1760 and encoded[-1:] == b"\xff"
    assert clip.encoded("PCMU") is encoded
