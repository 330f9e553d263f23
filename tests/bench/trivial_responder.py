"""The floor of Python cost: an asyncio UDP responder that refuses every INVITE.

Run: .venv/bin/python tests/bench/trivial_responder.py --port PORT [--uvloop]

Answers each INVITE with ``100 Trying`` and ``486 Busy Here`` (headers copied, a To tag added),
each MESSAGE with ``202 Accepted``, and absorbs ACKs; anything else gets nothing. No routing, no
webhook, no store: the benchmark's same-run baseline for "what a Python asyncio SIP loop costs
per call on this machine".
"""

from __future__ import annotations

import argparse
import asyncio
import signal

_COPIED = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")


class TrivialResponder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.invites = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        is_message = data.startswith(b"MESSAGE ")
        if not (is_message or data.startswith(b"INVITE ")) or self.transport is None:
            return  # ACK (and anything else) is absorbed
        self.invites += 1
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        copied: list[bytes] = []
        for line in head:
            name = line.split(b":", 1)[0].strip().lower()
            if name in _COPIED:
                if name in (b"to", b"t") and b";tag=" not in line:
                    line += b";tag=trivial"
                copied.append(line)
        if is_message:  # message_bench.py's baseline: 202 at once
            accepted = [b"SIP/2.0 202 Accepted", *copied, b"Content-Length: 0", b"", b""]
            self.transport.sendto(b"\r\n".join(accepted), addr)
            return
        trying = b"\r\n".join([b"SIP/2.0 100 Trying", *copied, b"Content-Length: 0", b"", b""])
        busy = b"\r\n".join([b"SIP/2.0 486 Busy Here", *copied, b"Content-Length: 0", b"", b""])
        self.transport.sendto(trying, addr)
        self.transport.sendto(busy, addr)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        TrivialResponder, local_addr=("127.0.0.1", port)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="use uvloop's event loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
