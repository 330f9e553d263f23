"""Whole-call recording cost per 20 ms of call: ``TrackRecording`` (both tracks, mono or dual;
one track) next to the inbound-only ``Recorder`` it sits beside (the baseline, same run).

Run: .venv/bin/python tests/bench/recording_bench.py [--seconds 600]

Each case records ``--seconds`` of call (50 frames a second per track, PCMU) into a file under
a temporary directory, driven by a fake clock; CPU is process time, median of 5 rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "daemon"))

from rcmlrouter.media import g711
from rcmlrouter.media.audio import RATE, tone
from rcmlrouter.media.recorder import Recorder
from rcmlrouter.media.track_recording import FRAME, TrackRecording


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def frames(frequency: float, count: int) -> list[bytes]:
    pcm = tone(frequency, count * FRAME / RATE, amplitude=0.3).pcm
    return [g711.encode(pcm[i * FRAME : (i + 1) * FRAME], "PCMU") for i in range(count)]


def run_tracks(path: Path, seconds: int, track: str, channels: str) -> float:
    clock = Clock()
    inbound, outbound = frames(600, 50), frames(1000, 50)
    rec = TrackRecording(path, seconds + 10, track, channels, clock)
    started = time.process_time()
    for i in range(seconds * 50):
        clock.now = i * 0.02
        rec.inbound(inbound[i % 50], "PCMU")
        rec.outbound(outbound[i % 50], "PCMU")
    rec.close()
    return time.process_time() - started


def run_recorder(path: Path, seconds: int) -> float:
    """The baseline: the inbound Recorder as the session feeds it (decode, then feed)."""
    return asyncio.run(_recorder(path, seconds))


async def _recorder(path: Path, seconds: int) -> float:
    inbound = frames(600, 50)
    rec = Recorder(path, seconds + 10, 0.0)
    rec.start(0.0)
    started = time.process_time()
    for i in range(seconds * 50):
        pcm = g711.decode_bytes(inbound[i % 50], "PCMU")
        rec.feed(i * FRAME, pcm, i * 0.02)
    rec.close(trim=False)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=600)
    args = parser.parse_args()
    seconds = args.seconds
    cases: list[tuple[str, Callable[[Path], float]]] = [
        ("inbound Recorder (baseline)", lambda p: run_recorder(p, seconds)),
        ("TrackRecording both, mono", lambda p: run_tracks(p, seconds, "both", "mono")),
        ("TrackRecording both, dual", lambda p: run_tracks(p, seconds, "both", "dual")),
        ("TrackRecording outbound, mono", lambda p: run_tracks(p, seconds, "outbound", "mono")),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, case in cases:
            rounds = [case(Path(directory) / f"r{i}.wav") for i in range(5)]
            rows.append((name, statistics.median(rounds)))
    base = rows[0][1]
    ticks = seconds * 50
    print(f"## Whole-call recording, {seconds} s of call ({ticks:,} ticks of 20 ms), median of 5\n")
    print("| case | µs per 20 ms tick | % of a core per call | × baseline |")
    print("|---|---:|---:|---:|")
    for name, cpu in rows:
        per_tick = 1e6 * cpu / ticks
        print(f"| {name} | {per_tick:.1f} | {per_tick / 200:.3f} | {cpu / base:.2f}× |")


if __name__ == "__main__":
    main()
