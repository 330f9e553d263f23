"""Conference benchmark: rooms of N callers mixed in one process, next to same-run baselines.

Run: .venv/bin/python tests/bench/conference_bench.py [--rooms 100] [--size 4] [--seconds 8]
[--rounds 3]  (the cases interleave round by round; the table has each figure's median)

Each case runs in a fresh process (uvloop, like the daemon) that opens ``rooms x size`` real
MediaSessions on 127.0.0.1 (PCMU, one in four PCMA when mixing, so both codecs are in every
room) and puts them in conferences through the real registry, rooms, mixer and media clock
(the store and the outbox are in-memory stand-ins: they are off the media path). A second process
plays every caller: one UDP socket sends each leg a 20 ms tone frame every 20 ms and timestamps
what comes back, per SSRC (frame gap p50 / p99 / max). ``sent p99`` is the media clock's own
cadence in the mixing process (the interval between its ticks, when every packet of the tick
goes out), free of the callers' process's scheduling. CPU is the mixing process's time over the
window (100 % = one core).

Cases, on the same legs:
- ``play``: every leg plays a looped tone, nothing is mixed (the media path alone);
- ``pairs``: two-party rooms (what a two-leg bridge with media costs in-process);
- ``rooms``: the rooms of ``size`` (the target: 100 x 4, frame gap p99 < 25 ms);
- ``alone``: one caller per room (the mixer has nothing to do; silence leaves the clock).
The mixer's own tick (decode, mix, encode, send for every room) is reported as p50 / p99 µs
of CPU. Then the arithmetic alone: one tick's mix of the same rooms with numpy (``mixer.mix``)
against the same sums in plain Python (lists of ints), the library choice's same-run baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

PHONES = r"""
import json, socket, struct, sys, threading, time
import numpy as np
legs, warmup, window = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024 * 1024)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
ports = json.loads(sys.stdin.readline())
t = np.arange(160) / 8000
frame = {0: bytes(np.full(160, 0xFF, np.uint8)), 8: bytes(np.full(160, 0xD5, np.uint8))}
tone = (0.2 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
# a crude mu-law of the tone is enough for the mixer to have work (it decodes whatever arrives)
mu = (np.sign(tone) * np.log1p(255 * np.abs(tone) / 32768) / np.log1p(255) * 127).astype(np.int16)
frame[0] = bytes(((~(mu + 128)) & 0xFF).astype(np.uint8))
frame[8] = bytes(((mu + 128) ^ 0x55).astype(np.uint8).tobytes())
stop = threading.Event()
def send():
    n, start = 0, time.monotonic()
    while not stop.is_set():
        for i, (port, pt) in enumerate(ports):
            sock.sendto(struct.pack("!BBHII", 0x80, pt, n & 0xFFFF, 160 * n, 1000 + i) + frame[pt],
                        ("127.0.0.1", port))
        n += 1
        delay = start + 0.02 * n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
threading.Thread(target=send, daemon=True).start()
last, gaps, count = {}, [], 0
begin = time.monotonic()
sock.settimeout(0.2)
while time.monotonic() - begin < warmup + window:
    try:
        data = sock.recv(2048)
    except socket.timeout:
        continue
    now = time.monotonic()
    ssrc = struct.unpack_from("!I", data, 8)[0]
    if now - begin >= warmup:
        count += 1
        if ssrc in last:
            gaps.append(now - last[ssrc])
    last[ssrc] = now
stop.set()
g = np.array(gaps) * 1000 if gaps else np.zeros(1)
print(json.dumps({"pps": count / window, "p50": float(np.percentile(g, 50)),
                  "p99": float(np.percentile(g, 99)), "max": float(g.max()), "legs": len(last)}))
"""


class MemoryStore:
    """The two store calls a room makes, kept in memory (off the media path in the daemon)."""

    async def claim_conference(self, record: Any) -> Any:
        return record

    async def save_conference_rows(self, conferences: Any, participants: Any) -> None:
        return None


class MemoryOutbox:
    def event(self, *args: Any) -> Any:
        return args

    def commit(self, **_: Any) -> None:
        return None


async def mixing(case: str, rooms: int, size: int, phones_port: int, warmup: float,
                 window: float, ports: list[int]) -> dict[str, float]:  # fmt: skip
    from rcmlrouter.conference.participant import Participant, Settings
    from rcmlrouter.conference.registry import ConferenceRegistry, JoinRequest
    from rcmlrouter.conference.room import RoomOptions
    from rcmlrouter.media import audio
    from rcmlrouter.media.clock import MediaClock
    from rcmlrouter.media.player import ClipSource
    from rcmlrouter.media.session import MediaParams, MediaSession
    from rcmlrouter.store.ids import new_sid

    clock = MediaClock()
    registry = ConferenceRegistry(MemoryStore(), MemoryOutbox(), clock, "bench")  # type: ignore[arg-type]
    registry.start()
    legs = rooms * size
    sessions = []
    for i in range(legs):
        codec, pt = ("PCMA", 8) if case != "play" and i % 4 == 3 else ("PCMU", 0)
        params = MediaParams(codec, pt, 101, "127.0.0.1", phones_port)
        sessions.append(await MediaSession.open("127.0.0.1", ports[i], params, clock, 1.0))
    plays = []
    if case == "play":
        source = ClipSource(audio.tone(1000.0, 3.0), loop=0)
        plays = [asyncio.create_task(s.play(source)) for s in sessions]
    else:
        per_room = 1 if case == "alone" else 2 if case == "pairs" else size
        for i, session in enumerate(sessions):
            request = JoinRequest("AC" + "0" * 32, f"room-{i // per_room}", None, RoomOptions())
            participant = Participant(new_sid("CA"), session, Settings(beep="false"))
            await registry.join(request, participant)
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    await asyncio.sleep(warmup)
    probe = clock.register(lambda: stamps.append(loop.time()))  # the clock's cadence, as sent
    engine = registry.engine
    engine.tick_seconds.clear()
    cpu, wall = time.process_time(), time.monotonic()
    late = clock.late_ticks
    await asyncio.sleep(window)
    used = (time.process_time() - cpu) / (time.monotonic() - wall)
    clock.unregister(probe)
    sends = sorted(b - a for a, b in itertools.pairwise(stamps)) or [0.0]
    ticks = sorted(engine.tick_seconds) or [0.0]
    result = {
        "cpu": used,
        "tick_p50": ticks[len(ticks) // 2] * 1e6,
        "tick_p99": ticks[min(len(ticks) - 1, int(len(ticks) * 0.99))] * 1e6,
        "late_ticks": clock.late_ticks - late,
        "send_p99": sends[min(len(sends) - 1, int(len(sends) * 0.99))] * 1000,
        "clock_streams": len(clock),
    }
    for task in plays:
        task.cancel()
    for session in sessions:
        session.close()
    return result


def run_one(case: str, rooms: int, size: int, warmup: float, window: float) -> dict[str, Any]:
    legs = rooms * size
    phones = subprocess.Popen(
        [sys.executable, "-c", PHONES, str(legs), str(warmup), str(window)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert phones.stdout is not None and phones.stdin is not None
    phones_port = int(phones.stdout.readline())
    ports = [30000 + 2 * i for i in range(legs)]
    codecs = [8 if case != "play" and i % 4 == 3 else 0 for i in range(legs)]
    phones.stdin.write(json.dumps(list(zip(ports, codecs, strict=True))) + "\n")
    phones.stdin.flush()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(mixing(case, rooms, size, phones_port, warmup, window, ports))
    out, _ = phones.communicate(timeout=60)
    result.update(json.loads(out.strip().splitlines()[-1]))
    return result


def arithmetic(rooms: int, size: int) -> tuple[float, float]:
    """µs per tick of the mix alone: numpy (``mixer.mix``) and plain Python, same frames."""
    import timeit

    import numpy as np

    from rcmlrouter.conference.mixer import mix

    legs = rooms * size
    rng = np.random.default_rng(1)
    spoken = rng.integers(-8000, 8000, (legs, 160)).astype(np.int32)
    starts = np.arange(0, legs, size, dtype=np.intp)
    room_of = np.repeat(np.arange(rooms), size)
    frames = spoken.tolist()

    def plain() -> list[list[int]]:
        heard = []
        for first in range(0, legs, size):
            members = frames[first : first + size]
            total = [sum(column) for column in zip(*members, strict=True)]
            for own in members:
                heard.append(
                    [max(-32768, min(32767, t - o)) for t, o in zip(total, own, strict=True)]
                )
        return heard

    fast = timeit.timeit(lambda: mix(spoken, starts, room_of), number=200) / 200
    slow = timeit.timeit(plain, number=5) / 5
    return fast * 1e6, slow * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:  # child: one case in a fresh process
        result = run_one(options.one, options.rooms, options.size, 2.0, options.seconds)
        print(json.dumps(result))
        return 0
    legs = options.rooms * options.size
    cases = ("play", "pairs", "rooms", "alone")
    runs: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    for _ in range(options.rounds):
        for case in cases:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", case, "--rooms", str(options.rooms),
                 "--size", str(options.size), "--seconds", str(options.seconds)],
                capture_output=True, text=True, check=False,
                env={**os.environ, "PYTHONPATH": "daemon"},
            )  # fmt: skip
            lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                print(f"{case}: failed\n{proc.stderr[-3000:]}")
                return 1
            runs[case].append(json.loads(lines[-1]))
    print(
        f"{legs} legs, {options.rounds} rounds (medians); frame gaps as the callers receive "
        "them; CPU of the mixing process (100 % = one core)"
    )
    print(f"{'case':<7}{'rooms':>6}{'CPU %':>8}{'%/leg':>8}{'µs/leg/tick':>12}{'mix p50 µs':>11}"
          f"{'p99 µs':>8}{'pps in':>8}{'gap p50':>8}{'p99 ms':>7}{'max ms':>8}"
          f"{'sent p99':>9}")  # fmt: skip
    for case in cases:
        rooms = {"play": legs, "pairs": legs // 2, "rooms": options.rooms, "alone": legs}[case]
        r = {key: statistics.median(run[key] for run in runs[case]) for key in runs[case][0]}
        per_leg_tick = r["cpu"] / legs / 50 * 1e6
        print(f"{case:<7}{rooms:>6}{100 * r['cpu']:>8.1f}{100 * r['cpu'] / legs:>8.3f}"
              f"{per_leg_tick:>12.1f}{r['tick_p50']:>11.0f}{r['tick_p99']:>8.0f}{r['pps']:>8.0f}"
              f"{r['p50']:>8.2f}{r['p99']:>7.2f}{r['max']:>8.2f}{r['send_p99']:>9.2f}",
              flush=True)  # fmt: skip
    fast, slow = arithmetic(options.rooms, options.size)
    print(f"mix arithmetic for {options.rooms} x {options.size}, one tick: numpy {fast:.0f} µs, "
          f"plain Python {slow:.0f} µs ({slow / fast:.0f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
