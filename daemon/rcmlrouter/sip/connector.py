"""The TCP and TLS connections we open to send a message (a request to a ``;transport=tcp``
URI, a response to a peer whose connection is gone).

Messages for a peer wait in its queue while its connection is being made and are written once
it is up; a connection that cannot be made within :data:`CONNECT_TIMEOUT` fails them all at
once (``on_failed(destination)``: the client transactions to there end, RFC 3261 §18.4). An
opened connection joins the transports' table and is reused like an accepted one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from rcmlrouter.sip.stream import Source, StreamOwner, StreamProtocol

CONNECT_TIMEOUT = 10.0


class Connector:
    """Opens connections on demand; queues what is sent to a peer while its connection opens."""

    def __init__(self, owner: StreamOwner, on_failed: Callable[[Source], None]) -> None:
        self._owner = owner
        self._on_failed = on_failed
        self.tls_client: ssl.SSLContext | None = None  # set before start(); default: system CAs
        self._connecting: dict[Source, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, data: bytes, key: Source) -> None:
        """``data`` for the peer ``key`` that has no connection yet: queue it, connect once."""
        if key in self._connecting:
            self._connecting[key].append(data)
            return
        self._connecting[key] = [data]
        task = asyncio.get_running_loop().create_task(self._connect(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _connect(self, key: Source) -> None:
        loop = asyncio.get_running_loop()
        tls = key[0] == "tls"
        if tls and self.tls_client is None:
            self.tls_client = ssl.create_default_context()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: StreamProtocol(self._owner, key[0]),
                    key[1],
                    key[2],
                    ssl=self.tls_client if tls else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError):
            self._connecting.pop(key, None)
            self._on_failed(key)
            return
        self._owner.connections[key] = protocol
        for data in self._connecting.pop(key, []):
            protocol.write(data)


__all__ = ["CONNECT_TIMEOUT", "Connector"]
