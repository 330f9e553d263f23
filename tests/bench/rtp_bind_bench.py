"""What a bind attempt costs, on uvloop (the daemon's loop): the port pool tries port after port
when other processes hold some, so a failed try must be cheap.

- baseline: two ``loop.create_datagram_endpoint(local_addr=…)`` calls (RTP + RTCP), the path
  before ``bind_pair``; and one such call on a port someone holds (a failed try);
- ``bind_pair`` + ``RtpEndpoint.attach`` (what a call does now), and ``bind_pair`` on a port
  someone holds (what a skipped port costs).

Medians of ``--rounds`` rounds of ``--pairs`` pairs each, in microseconds; ratios against the
baseline of the same run.

    python tests/bench/rtp_bind_bench.py [--pairs 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rcmlrouter.media.rtp import RtpEndpoint, bind_pair
from support.ports import free_port_range

REMOTE = ("127.0.0.1", 9)


async def old_pairs(low: int, pairs: int) -> float:
    loop = asyncio.get_running_loop()
    transports = []
    started = time.perf_counter()
    for port in range(low, low + 2 * pairs, 2):
        for each in (port, port + 1):
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", each)
            )
            transports.append(transport)
    took = time.perf_counter() - started
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.05)
    return took / pairs * 1e6


async def old_failures(low: int, pairs: int) -> float:
    loop = asyncio.get_running_loop()
    held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(pairs)]
    for sock, port in zip(held, range(low, low + 2 * pairs, 2), strict=True):
        sock.bind(("127.0.0.1", port))
    started = time.perf_counter()
    for port in range(low, low + 2 * pairs, 2):
        with contextlib.suppress(OSError):
            await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", port)
            )
    took = time.perf_counter() - started
    for sock in held:
        sock.close()
    return took / pairs * 1e6


async def new_pairs(low: int, pairs: int) -> float:
    endpoints = []
    started = time.perf_counter()
    for port in range(low, low + 2 * pairs, 2):
        endpoints.append(await RtpEndpoint.attach(bind_pair("127.0.0.1", port), REMOTE))
    took = time.perf_counter() - started
    for endpoint in endpoints:
        endpoint.close()
    await asyncio.sleep(0.05)
    return took / pairs * 1e6


async def new_failures(low: int, pairs: int) -> float:
    held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(pairs)]
    for sock, port in zip(held, range(low, low + 2 * pairs, 2), strict=True):
        sock.bind(("127.0.0.1", port))
    started = time.perf_counter()
    for port in range(low, low + 2 * pairs, 2):
        with contextlib.suppress(OSError):
            bind_pair("127.0.0.1", port).close()
    took = time.perf_counter() - started
    for sock in held:
        sock.close()
    return took / pairs * 1e6


async def one_round(pairs: int) -> dict[str, float]:
    low = free_port_range(2 * pairs)
    return {
        "old pair": await old_pairs(low, pairs),
        "new pair": await new_pairs(low, pairs),
        "old failed try": await old_failures(low, pairs),
        "new failed try": await new_failures(low, pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = [uvloop.run(one_round(args.pairs)) for _ in range(args.rounds)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(f"uvloop, {args.pairs} pairs x {args.rounds} rounds (median µs)")
    print("| step | old path µs | bind_pair µs | × old |\n|---|---:|---:|---:|")
    for step in ("pair", "failed try"):
        old, new = median[f"old {step}"], median[f"new {step}"]
        print(f"| {step} | {old:.1f} | {new:.1f} | {new / old:.2f}× |")


if __name__ == "__main__":
    main()
