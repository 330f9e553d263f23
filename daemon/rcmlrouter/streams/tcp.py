"""The media streams' TCP connections: to the agent's addresses the deny list allowed, only.

picows (the WebSocket client, :mod:`rcmlrouter.streams.connector`) takes a connected socket from
a socket factory; this module makes it. The host is resolved and checked by the webhook client's
:class:`~rcmlrouter.httpclient.addresses.AddressBook` (``[webhooks] deny_networks``, after DNS),
and the connection goes to those addresses, first that answers, so a name cannot be resolved
once for the check and again for the connection (DNS rebinding). TLS and the host name check
happen above, on this socket (``server_hostname`` = the URL's host).
"""

from __future__ import annotations

import asyncio
import socket

from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.failures import ConnectFailed


async def connect_checked(book: AddressBook, host: str, port: int) -> socket.socket:
    """A connected, non-blocking TCP socket to an allowed address of ``host``.

    Raises EgressDeniedError (every address denied), ConnectFailed (no address answered)."""
    loop = asyncio.get_running_loop()
    failures = []
    for address in await book.addresses(host, port):
        bare = address.strip("[]").partition("%")[0]
        family = socket.AF_INET6 if ":" in bare else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (bare, port))
        except OSError as exc:
            sock.close()
            failures.append(f"{address}: {exc.strerror or exc}")
            continue
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise ConnectFailed(f"cannot connect to {host}:{port} ({'; '.join(failures)})")
