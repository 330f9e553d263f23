"""Routing microbenchmark: 1,000,000 exact numbers + 10,000 regexes in one organization.

Run: .venv/bin/python tests/bench/routing_bench.py [--exact N] [--regex N] [--calls N]

Measures RoutingSnapshot.resolve two ways, next to a plain dict.get baseline in the same run:
per call (time.perf_counter_ns around each call: median / p99, but the clock itself costs about
as much as a dict.get) and in batch (one clock around a loop of N calls, divided by N: the
honest mean). Each way gets its own fresh inputs, so "cold" cases stay cold (never seen by the
phonenumbers memo, the regex result memo or RE2's lazily built DFA) except the 'repeat' rows.
Prints build time, the regex index build, RSS after build and at the end.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "daemon"))

from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot

ORG = "OR" + "1" * 32
OTHER_ORG = "OR" + "2" * 32


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_entries(rng: random.Random, exact: int, regex: int) -> tuple[list[str], list[str]]:
    """Exact numbers: +1 NANP numbers with area codes 2xx-7xx; regex prefixes start with 8 or 9."""
    numbers: set[str] = set()
    while len(numbers) < exact:
        numbers.add(f"+1{rng.randrange(2_000_000_000, 7_999_999_999)}")
    prefixes: set[str] = set()
    while len(prefixes) < regex:
        prefixes.add(str(rng.randrange(80_000, 99_999_999)))
    return sorted(numbers), sorted(prefixes)


def entries(numbers: list[str], prefixes: list[str]) -> Iterator[RouteEntry]:
    """Rows as the store would stream them; every tenth exact number is a SIP number."""
    for i, number in enumerate(numbers):
        yield RouteEntry(f"PN{i:032x}", ORG, number, i % 10 == 0, 1.0e9 + i)
    for j, prefix in enumerate(prefixes):
        shape = (f"^{prefix}[0-9]*$", f"{prefix}.*", f"^\\+?{prefix}[0-9]{{4,}}")[j % 3]
        yield RouteEntry(f"PN{len(numbers) + j:032x}", ORG, shape, True, 2.0e9 + j)


def measure_batch(call: Callable[[str], object], inputs: Sequence[str]) -> float:
    """Mean ns per call over one timed loop."""
    clock = time.perf_counter_ns
    start = clock()
    for dialed in inputs:
        call(dialed)
    return (clock() - start) / len(inputs)


def measure(call: Callable[[str], object], inputs: Sequence[str]) -> list[int]:
    timings = []
    clock = time.perf_counter_ns
    for dialed in inputs:
        start = clock()
        call(dialed)
        timings.append(clock() - start)
    return timings


def summarize(name: str, timings: list[int], batch: float, baselines: tuple[float, float]) -> None:
    timings.sort()
    median = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99)]
    print(
        f"| {name:<40} | {median / 1000:8.2f} | {p99 / 1000:8.2f} | {median / baselines[0]:6.1f}x"
        f" | {batch / 1000:8.2f} | {batch / baselines[1]:6.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exact", type=int, default=1_000_000)
    parser.add_argument("--regex", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(1)
    numbers, prefixes = build_entries(rng, args.exact, args.regex)
    gc.collect()
    rss_before = rss_mib()
    started = time.perf_counter()
    snap = RoutingSnapshot(entries(numbers, prefixes))
    build_s = time.perf_counter() - started
    gc.collect()
    rss_after = rss_mib()
    started = time.perf_counter()
    snap.resolve("99999999", ORG, None)  # the first regex resolve builds the regex index
    set_build_ms = (time.perf_counter() - started) * 1000
    rss_indexed = rss_mib()

    plain = {number: f"PN{i:032x}" for i, number in enumerate(numbers)}
    calls = args.calls

    def fresh(make: Callable[[], str]) -> tuple[list[str], list[str]]:
        return [make() for _ in range(calls)], [make() for _ in range(calls)]

    exact_hits = fresh(lambda: rng.choice(numbers))
    national_hits = fresh(lambda: rng.choice(numbers)[2:])
    regex_hits = fresh(lambda: rng.choice(prefixes) + str(rng.randrange(10**6)))
    distinct = regex_hits[0][:100]
    repeated = fresh(lambda: rng.choice(distinct))
    misses = fresh(lambda: f"6{rng.randrange(10**9, 10**10)}")
    short_misses = fresh(lambda: f"{rng.randrange(10**5)}#")

    def resolve(dialed: str) -> object:
        return snap.resolve(dialed, ORG, None)

    cases = [
        ("baseline dict.get (hit)", plain.get, exact_hits),
        ("exact hit (+E.164 as dialed)", resolve, exact_hits),
        ("exact hit via E.164 (national)", resolve, national_hits),
        ("exact miss -> regex hit (cold)", resolve, regex_hits),
        ("exact miss -> regex hit (100 distinct)", resolve, repeated),
        ("full miss (11 digits)", resolve, misses),
        ("full miss, short with # (cold)", resolve, short_misses),
        ("other org caller: no regex", lambda d: snap.resolve(d, ORG, OTHER_ORG), misses),
    ]
    gc.disable()
    results = [
        (name, measure(call, inputs[0]), measure_batch(call, inputs[1]))
        for name, call, inputs in cases
    ]
    gc.enable()
    baselines = (statistics.median(results[0][1]), results[0][2])

    print(f"entries: {len(snap):,} ({args.exact:,} exact, {args.regex:,} regex) in one org")
    print(f"build: {build_s:.2f} s; regex index build (first regex resolve): {set_build_ms:.0f} ms")
    print(
        f"RSS: {rss_before:.0f} MiB before build (interpreter + the input number strings, which the"
        f" snapshot shares), {rss_after:.0f} after, {rss_indexed:.0f} with the regex index,"
        f" {rss_mib():.0f} at the end (+ the benchmark's inputs, memos, RE2 DFA caches)"
    )
    print(f"calls per case: {calls:,} per call + {calls:,} batch; python {sys.version.split()[0]}")
    print()
    print(
        f"| {'case':<40} | {'median µs':>8} | {'p99 µs':>8} | {'ratio':>7}"
        f" | {'batch µs':>8} | {'ratio':>7} |"
    )
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 10}|{'-' * 9}|{'-' * 10}|{'-' * 9}|")
    for name, timings, batch in results:
        summarize(name, timings, batch, baselines)


if __name__ == "__main__":
    main()
