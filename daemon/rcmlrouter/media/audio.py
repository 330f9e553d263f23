"""Audio clips: WAV decoding, resampling to 8 kHz mono, tones, and the clip type the player uses.

WAV: RIFF ``fmt``/``data`` chunks, PCM 8/16/24/32-bit, IEEE float, µ-law and A-law, and
WAVE_FORMAT_EXTENSIBLE wrapping those; any rate, any channel count (mixed down to mono). A data
chunk whose declared size runs past the end (streamed WAVs such as ``espeak-ng --stdout``) is
read to the end.

Resampling is band-limited interpolation: a windowed-sinc (Blackman) low-pass at 0.9 × the lower
Nyquist frequency, computed once per phase of the rate ratio (polyphase, 32 zero crossings each
side), in numpy. Good to better than -60 dB aliasing for speech and prompts.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from rcmlrouter.errors import MediaError
from rcmlrouter.media import g711

RATE: Final = 8000
FRAME_SAMPLES: Final = 160
_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_HALF_TAPS: Final = 32
_CHUNK: Final = 4096

Floats = npt.NDArray[np.float64]


@dataclass(eq=False)
class AudioClip:
    """Mono 16-bit PCM at 8 kHz; encoded once per codec on first use."""

    pcm: g711.Pcm
    _encoded: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def duration(self) -> float:
        return len(self.pcm) / RATE

    def encoded(self, codec: str) -> bytes:
        """The whole clip in ``codec``, padded with silence to whole 20 ms frames."""
        if codec not in self._encoded:
            data = g711.encode(self.pcm, codec)
            pad = -len(data) % FRAME_SAMPLES
            self._encoded[codec] = data + g711.silence(codec, pad)
        return self._encoded[codec]


@dataclass(frozen=True, slots=True)
class WavFormat:
    tag: int
    channels: int
    rate: int
    bits: int


def _chunks(data: bytes) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaError("not a RIFF/WAVE file", 12300)
    found: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        name = data[offset : offset + 4]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        body = data[offset + 8 : offset + 8 + size]  # truncated on purpose when size overruns
        found.setdefault(name, body)
        offset += 8 + size + (size & 1)
    if b"fmt " not in found or b"data" not in found:
        raise MediaError("WAV without fmt or data chunk", 12300)
    return found


def _format(fmt: bytes) -> WavFormat:
    if len(fmt) < 16:
        raise MediaError("WAV fmt chunk too short", 12300)
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")  # first two bytes of the sub-format GUID
    if channels < 1 or rate < 1000:
        raise MediaError(f"WAV with {channels} channels at {rate} Hz", 12300)
    return WavFormat(tag, channels, rate, bits)


def _samples(fmt: WavFormat, data: bytes) -> Floats:
    """Interleaved samples as floats in [-1, 1)."""
    if fmt.tag == _PCM and fmt.bits == 8:
        return (np.frombuffer(data, np.uint8).astype(np.float64) - 128.0) / 128.0
    if fmt.tag == _PCM and fmt.bits == 16:
        return np.frombuffer(data[: len(data) // 2 * 2], "<i2") / 32768.0
    if fmt.tag == _PCM and fmt.bits == 24:
        raw = np.frombuffer(data[: len(data) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        return np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)
    if fmt.tag == _PCM and fmt.bits == 32:
        return np.frombuffer(data[: len(data) // 4 * 4], "<i4") / float(1 << 31)
    if fmt.tag == _FLOAT and fmt.bits in (32, 64):
        dtype = "<f4" if fmt.bits == 32 else "<f8"
        size = fmt.bits // 8
        floats = np.frombuffer(data[: len(data) // size * size], dtype).astype(np.float64)
        return np.clip(floats, -1.0, 1.0)
    if fmt.tag in (_ULAW, _ALAW) and fmt.bits == 8:
        codec = "PCMU" if fmt.tag == _ULAW else "PCMA"
        decoded: Floats = g711.decode(data, codec) / 32768.0
        return decoded
    raise MediaError(f"unsupported WAV encoding (format {fmt.tag}, {fmt.bits} bits)", 12300)


def decode_wav(data: bytes) -> AudioClip:
    """Decode a WAV file to an 8 kHz mono clip. Raises MediaError (12300) when it cannot."""
    chunks = _chunks(data)
    fmt = _format(chunks[b"fmt "])
    samples = _samples(fmt, chunks[b"data"])
    frames = len(samples) // fmt.channels
    mono = samples[: frames * fmt.channels].reshape(frames, fmt.channels).mean(axis=1)
    return AudioClip(to_pcm(resample(mono, fmt.rate, RATE)))


def to_pcm(samples: Floats) -> g711.Pcm:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def _sinc_kernel(offsets: Floats, cutoff: float) -> Floats:
    """Windowed-sinc weights for input offsets (in input samples) at ``cutoff`` (cycles/sample)."""
    window = (
        0.42
        + 0.5 * np.cos(np.pi * offsets / (_HALF_TAPS + 1))
        + 0.08 * np.cos(2 * np.pi * offsets / (_HALF_TAPS + 1))
    )
    weights: Floats = 2 * cutoff * np.sinc(2 * cutoff * offsets) * window
    return weights


def resample(samples: Floats, rate_in: int, rate_out: int) -> Floats:
    """Band-limited resampling of mono float samples from ``rate_in`` to ``rate_out``.

    Output sample ``n`` sits at input position ``n * rate_in / rate_out``; its fractional part
    takes one of ``rate_out / gcd`` values, so the kernel is computed once per phase (polyphase).
    """
    if rate_in == rate_out or len(samples) == 0:
        return np.asarray(samples, dtype=np.float64)
    cutoff = 0.45 * min(rate_in, rate_out) / rate_in  # in cycles per input sample
    phases = rate_out // math.gcd(rate_in, rate_out)
    taps = np.arange(-_HALF_TAPS, _HALF_TAPS + 1)
    kernels = _sinc_kernel(taps[None, :] - (np.arange(phases) / phases)[:, None], cutoff)
    count = int(len(samples) * rate_out // rate_in)
    padded = np.concatenate([np.zeros(_HALF_TAPS + 1), samples, np.zeros(_HALF_TAPS + 2)])
    out = np.empty(count)
    for begin in range(0, count, _CHUNK):  # bounded memory: CHUNK x taps at a time
        n = np.arange(begin, min(begin + _CHUNK, count), dtype=np.int64)
        base, remainder = np.divmod(n * rate_in, rate_out)
        phase = remainder * phases // rate_out
        index = base[:, None] + taps[None, :] + _HALF_TAPS + 1
        out[begin : begin + len(n)] = (padded[index] * kernels[phase]).sum(axis=1)
    return out


def tone(frequency: float, seconds: float, amplitude: float = 0.5) -> AudioClip:
    """A sine tone (used for the Record beep and in tests)."""
    t = np.arange(round(seconds * RATE)) / RATE
    return AudioClip(to_pcm(amplitude * np.sin(2 * np.pi * frequency * t)))


def silence(seconds: float) -> AudioClip:
    return AudioClip(np.zeros(round(seconds * RATE), dtype=np.int16))
