"""Which WebSocket client for media streams: aiohttp's, `websockets` or `picows`, on our workload.

Run: .venv/bin/python tests/bench/ws_client_bench.py [--streams 200] [--seconds 10]
(``pip install -e '.[test,bench]'`` brings picows; websockets comes with the test extra.)

The workload of N bidirectional media streams: every 20 ms (one timer, like the media clock)
the client sends one Twilio ``media`` message (20 ms of µ-law, base64 in JSON, ~330 bytes) on
each of N sockets, and the agent (a picows server in another process, the fastest of the three,
so it is never the bottleneck) sends one such message on each socket every 20 ms, which the
client parses (JSON + base64, as ``streams/wire.py`` does). Each client runs in its own process
under uvloop, as the daemon does; CPU is that process's time over the measured window (100 % =
one core). Sending uses each library's idiom: aiohttp's and websockets' async ``send`` from one
writer task per socket fed by a queue (the daemon must not await in the RTP path), picows'
synchronous ``transport.send``; receiving: an ``async for`` task per socket (aiohttp,
websockets), picows' ``on_ws_frame`` callback. Baseline (same run): the same timer building the
same messages and parsing the same number of agent messages, with no sockets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SERVER = r"""
import asyncio, base64, json, sys
import uvloop
from picows import WSListener, WSMsgType, ws_create_server
PAYLOAD = base64.b64encode(bytes(160)).decode()
MESSAGE = json.dumps({"event": "media", "streamSid": "MZ" + "0" * 32,
                      "media": {"payload": PAYLOAD}}).encode()
clients = set()
received = 0
class Agent(WSListener):
    def on_ws_connected(self, transport):
        self.transport = transport
        clients.add(transport)
    def on_ws_disconnected(self, transport):
        clients.discard(transport)
    def on_ws_frame(self, transport, frame):
        global received
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        else:
            received += 1
async def main():
    server = await ws_create_server(lambda request: Agent(), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
        for transport in list(clients):
            transport.send(WSMsgType.TEXT, MESSAGE)
uvloop.run(main())
"""

CLIENT = r"""
import asyncio, base64, collections, json, sys, time
import orjson, uvloop
kind, url = sys.argv[1], sys.argv[2]
streams, warmup, window = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
received = 0
def handle(data):
    global received
    message = orjson.loads(data)
    base64.b64decode(message["media"]["payload"])
    received += 1
PAYLOAD = bytes(range(160))
def media(seq):
    encoded = base64.b64encode(PAYLOAD).decode("ascii")
    return ('{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
            '"timestamp":"%d","payload":"%s"},"streamSid":"MZ00000000000000000000000000000000"}'
            % (seq, seq, seq * 20, encoded))
AGENT = json.dumps({"event": "media", "streamSid": "MZ" + "0" * 32,
                    "media": {"payload": base64.b64encode(bytes(160)).decode()}}).encode()

class Queued:
    # a bounded queue and one writer task, as streams/connector.AgentSocket
    def __init__(self, send):
        self.send_async, self.queue, self.wakeup = send, collections.deque(), None
        self.task = asyncio.ensure_future(self.write())
    def send(self, text):
        self.queue.append(text)
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)
    async def write(self):
        while True:
            while self.queue:
                await self.send_async(self.queue.popleft())
            self.wakeup = asyncio.get_running_loop().create_future()
            await self.wakeup

async def open_aiohttp(session):
    import aiohttp
    ws = await session.ws_connect(url, decode_text=False, autoping=True)
    async def read():
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                handle(message.data)
    asyncio.ensure_future(read())
    return Queued(ws.send_str)

async def open_websockets(_):
    from websockets.asyncio.client import connect
    ws = await connect(url, compression=None, max_size=2**20)
    async def read():
        async for message in ws:
            handle(message)
    asyncio.ensure_future(read())
    return Queued(ws.send)

async def open_picows(_):
    from picows import WSListener, WSMsgType, ws_connect
    class Listener(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.TEXT:
                handle(frame.get_payload_as_bytes())
    transport, _ = await ws_connect(Listener, url)
    class Sync:
        def send(self, text):
            transport.send(WSMsgType.TEXT, text.encode())
    return Sync()

async def main():
    global received
    session = None
    if kind == "aiohttp":
        import aiohttp
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    openers = {"aiohttp": open_aiohttp, "websockets": open_websockets, "picows": open_picows}
    opener = openers.get(kind)
    sockets = [await opener(session) for _ in range(streams)] if opener else []
    loop = asyncio.get_running_loop()
    start, n, late = loop.time(), 0, []
    cpu0 = measured = None
    while True:
        n += 1
        due = start + n * 0.02
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        if cpu0 is None and now - start >= warmup:
            cpu0, received, measured = time.process_time(), 0, now
        if cpu0 is not None:
            late.append(now - due)
        if sockets:
            for s in sockets:
                s.send(media(n))
        else:  # baseline: the same messages built, the agent's parsed, nothing sent
            for _ in range(streams):
                media(n)
                handle(AGENT)
        if measured is not None and now - measured >= window:
            break
    cpu = time.process_time() - cpu0
    late.sort()
    print(json.dumps({"cpu": cpu / window, "received": received / window,
                      "late_p99": late[int(len(late) * 0.99)] * 1000}))
    import os
    os._exit(0)
uvloop.run(main())
"""


def run_client(kind: str, url: str, streams: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, kind, url, str(streams), "3", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{kind} client failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(lines[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"ws://127.0.0.1:{server.stdout.readline().strip()}/"
        time.sleep(0.5)
        results = {}
        for kind in ("baseline", "aiohttp", "websockets", "picows"):
            results[kind] = run_client(kind, url, options.streams, options.seconds)
    finally:
        server.kill()
    n = options.streams
    print(f"\n{n} bidirectional streams, 50 messages/s each way each, {options.seconds:.0f} s")
    print(f"{'client':<12}{'CPU %':>8}{'CPU %/stream':>14}{'over baseline':>15}"
          f"{'recv/s':>9}{'tick p99 ms':>13}")  # fmt: skip
    base = results["baseline"]["cpu"]
    for kind, r in results.items():
        extra = r["cpu"] - base if kind != "baseline" else 0.0
        print(
            f"{kind:<12}{r['cpu'] * 100:>8.1f}{r['cpu'] * 100 / n:>14.3f}"
            f"{extra * 100:>14.1f}%{r['received']:>9.0f}{r['late_p99']:>13.1f}"
        )


if __name__ == "__main__":
    main()
