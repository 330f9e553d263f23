"""Run the daemon (``rcmlrouter run``) with a memory probe, for leak hunting under load.

Run: RCMLROUTER_DEBUG_TRACEMALLOC=25 .venv/bin/python tests/bench/daemon_probe.py [--config F]

On SIGUSR2 the process appends a report to ``$RCMLROUTER_PROBE_OUT`` (default
``probe.txt`` in the working directory): the sizes of the SIP endpoint's, the call supervisor's
and the callback outbox's tables, the count of timers in the SIP timer heap (and how many of
them are cancelled), the object types whose ``gc.get_objects()`` counts grew since the previous
report, and with ``RCMLROUTER_DEBUG_TRACEMALLOC=N`` (N frames) the allocation sites that grew
most (a tracemalloc snapshot diff). The first report is the baseline and starts tracemalloc, so
later snapshots hold only what was allocated since and is still alive (and stay cheap).
SIGUSR1 makes the same report, then runs a full collection and lists the cyclic garbage it
freed: what the generational thresholds let pile up.

With ``RCMLROUTER_DEBUG_STALLS=1`` it also appends to ``$RCMLROUTER_PROBE_OUT.stalls``, as they
happen, one line per event-loop stall (a heartbeat of the SIP endpoint's overload signal more
than 50 ms late), per change of the overload state (with the lateness and the UDP receive
backlog that decided it) and per cycle collection longer than 10 ms: what a burst of shed 503s
follows.

The probe is test tooling: it wraps a few constructors to find the live objects and never changes
what the daemon does. Snapshots cost CPU (seconds with tracemalloc on a big heap), so expect a
latency blip at each report.
"""

from __future__ import annotations

import collections
import gc
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if "PYTHONPATH" not in os.environ:  # soak.py --code REV runs another revision's daemon
    sys.path.insert(0, str(HERE.parents[1] / "daemon"))

from rcmlrouter import cli  # noqa: E402
from rcmlrouter.callbacks import CallbackOutbox  # noqa: E402
from rcmlrouter.calls.supervisor import CallSupervisor  # noqa: E402
from rcmlrouter.sip.endpoint import SipEndpoint  # noqa: E402

LIVE: dict[str, Any] = {}
TOP = 20


def _remember(cls: type, name: str) -> None:
    original = cls.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        LIVE[name] = self

    cls.__init__ = init  # type: ignore[misc]


class Probe:
    def __init__(self, out: Path, frames: int) -> None:
        self.out = out
        self.frames = frames
        self.types: collections.Counter[str] = collections.Counter()
        self.snapshot: tracemalloc.Snapshot | None = None
        self.reports = 0

    def tables(self) -> list[str]:
        lines = []
        endpoint = LIVE.get("endpoint")
        if endpoint is not None:
            heap = getattr(endpoint.timers, "_heap", [])
            cancelled = sum(1 for entry in heap if entry[2].cancelled)
            lines.append(
                f"endpoint: server {len(endpoint._server)} pending {len(endpoint._pending)} "
                f"dialogs {len(endpoint._dialogs)} links {len(endpoint._links)} "
                f"clients {len(endpoint._clients)} timers {len(heap)} (cancelled {cancelled}) "
                f"in_flight {endpoint.in_flight}"
            )
        supervisor = LIVE.get("supervisor")
        if supervisor is not None:
            lines.append(f"supervisor: tasks {len(supervisor._tasks)}")
        outbox = LIVE.get("outbox")
        if outbox is not None:
            lines.append(
                f"outbox: queues {len(outbox._queues)} workers {len(outbox._workers)} "
                f"pending {outbox.pending} writer {len(outbox._writer._pending)} "
                f"marks {len(outbox._marks._pending)}"
            )
        lines.append(f"gc: counts {gc.get_count()} frozen {gc.get_freeze_count()}")
        return lines

    def type_growth(self) -> list[str]:
        counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        growth = counts.copy()
        growth.subtract(self.types)
        self.types = counts
        if self.reports == 1:
            return [f"gc objects: {sum(counts.values())} (baseline)"]
        lines = [f"gc objects: {sum(counts.values())}; grown types:"]
        for name, delta in growth.most_common(TOP):
            if delta <= 0:
                break
            lines.append(f"  {delta:+9d}  {name} ({counts[name]})")
        return lines

    def allocation_growth(self) -> list[str]:
        if not self.frames:
            return []
        if not tracemalloc.is_tracing():  # only what is allocated from the baseline on
            tracemalloc.start(self.frames)
            return [f"tracemalloc: started ({self.frames} frames)"]
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        previous, self.snapshot = self.snapshot, snapshot
        size = sum(stat.size for stat in snapshot.statistics("filename"))
        lines = [f"tracemalloc: {size / 2**20:.1f} MiB allocated since the baseline and alive"]
        if previous is None:
            previous = tracemalloc.Snapshot([], snapshot.traceback_limit)
        lines.append("tracemalloc growth by line:")
        for stat in snapshot.compare_to(previous, "lineno")[:TOP]:
            lines.append(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d}  {stat}")
        lines.append("tracemalloc growth by traceback (top 5):")
        for stat in snapshot.compare_to(previous, "traceback")[:5]:
            lines.append(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks")
            lines.extend(f"      {line}" for line in stat.traceback.format()[-12:])
        return lines

    def garbage(self) -> list[str]:
        """Run a full collection; what it frees is cyclic garbage the generations kept."""
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            freed = gc.collect()
            kinds = collections.Counter(type(o).__qualname__ for o in gc.garbage)
            gc.garbage.clear()
        finally:
            gc.set_debug(0)
        gc.collect()  # the saved cycles, now without gc.garbage's references
        lines = [f"full collection: {freed} unreachable objects (cyclic garbage) freed"]
        lines += [f"  {count:9d}  {name}" for name, count in kinds.most_common(TOP)]
        return lines

    def report(self, signum: int, _frame: object) -> None:
        self.reports += 1
        started = time.perf_counter()
        lines = [f"=== report {self.reports} at {time.time():.0f}"]
        generations = [len(gc.get_objects(g)) for g in range(3)]
        lines.append(f"gc objects by generation {generations}")
        lines += self.tables() + self.type_growth() + self.allocation_growth()
        if signum == signal.SIGUSR1:
            lines += self.garbage()
            lines.append(f"after it: {len(gc.get_objects())} objects outside the frozen set")
        lines.append(f"(report took {time.perf_counter() - started:.2f} s)")
        with self.out.open("a") as out:
            out.write("\n".join(lines) + "\n")


def run_queue_wait() -> float:
    """Seconds this process's threads have waited, runnable, for a CPU (``schedstat``)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/schedstat") as stat:
            total += int(stat.read().split()[1])
    return total / 1e9


class StallLog:
    """Stalls, overload transitions and long collections, with wall-clock timestamps. At an
    overload the last half second of beats is summarised: how late the loop ran, where the UDP
    backlog went, and how long the process waited for a CPU while runnable (the kernel's
    run-queue delay: a machine shared with other work shows there, not in the daemon)."""

    def __init__(self, out: Path) -> None:
        self.out = out.open("a", buffering=1)
        self.gc_started = 0.0
        self.beats: collections.deque[tuple[float, float, int, float]] = collections.deque(
            maxlen=50
        )

    def write(self, text: str) -> None:
        stamp = (
            time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        )
        self.out.write(f"{stamp} {text}\n")

    def watch(self) -> None:
        from rcmlrouter.sip.overload import LoopLag

        original = LoopLag._beat
        log = self

        def beat(lag: LoopLag) -> None:
            was = lag.overloaded
            original(lag)
            log.beats.append((time.monotonic(), lag.lag, lag.queued, run_queue_wait()))
            if lag.lag > 0.05 or lag.overloaded != was:
                state = {True: "OVERLOADED", False: "ok"}[lag.overloaded]
                log.write(
                    f"beat lag {1000 * lag.lag:.0f} ms, UDP backlog {lag.queued / 1024:.0f} KiB, "
                    f"{state}"
                )
            if lag.overloaded and not was:
                log.write("  before it: " + log.summary())

        LoopLag._beat = beat  # type: ignore[method-assign]
        gc.callbacks.append(self.on_gc)

    def summary(self) -> str:
        first, last = self.beats[0], self.beats[-1]
        backlog = " ".join(f"{b[2] // 1024}" for b in list(self.beats)[-12:])
        return (
            f"{1000 * (last[0] - first[0]):.0f} ms of beats, lag max "
            f"{1000 * max(b[1] for b in self.beats):.0f} ms, waited for a CPU "
            f"{1000 * (last[3] - first[3]):.0f} ms; last backlogs KiB: {backlog}"
        )

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self.gc_started
        if took > 0.01:
            self.write(
                f"gc gen{info['generation']} {1000 * took:.0f} ms, {info['collected']} collected"
            )


def main() -> int:
    frames = int(os.environ.get("RCMLROUTER_DEBUG_TRACEMALLOC", "0") or 0)
    _remember(SipEndpoint, "endpoint")
    _remember(CallSupervisor, "supervisor")
    _remember(CallbackOutbox, "outbox")
    out = Path(os.environ.get("RCMLROUTER_PROBE_OUT", "probe.txt"))
    probe = Probe(out, frames)
    if os.environ.get("RCMLROUTER_DEBUG_STALLS"):
        StallLog(out.with_name(out.name + ".stalls")).watch()
    signal.signal(signal.SIGUSR2, probe.report)
    signal.signal(signal.SIGUSR1, probe.report)  # the same, then a full collection
    return cli.main([*sys.argv[1:], "run"])


if __name__ == "__main__":
    sys.exit(main())
