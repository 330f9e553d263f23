"""Test audio made and measured in memory: sine waves, PCM WAV bytes from float samples, and the
strongest frequency of a signal (the FFT peak every media test measures pitch with)."""

from __future__ import annotations

import io
import wave

import numpy as np


def make_wav(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    """A PCM WAV (stdlib ``wave``) from float samples in [-1, 1], shape (n,) or (n, channels)."""
    data = np.asarray(samples, dtype=np.float64)
    if width == 1:
        raw = np.clip(np.round(data * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    else:
        raw = np.clip(np.round(data * 32767), -32768, 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(raw)
    return buffer.getvalue()


def sine(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * frequency * t)


def dominant_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    """The strongest frequency of a signal (FFT peak, Hann window)."""
    windowed = pcm.astype(np.float64) * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])
