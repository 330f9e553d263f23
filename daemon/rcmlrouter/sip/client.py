"""Client transactions of the endpoint: Via stamping, matching responses, transport failures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.transaction import MAGIC_COOKIE, Link, NonInviteClientTransaction
from rcmlrouter.sip.transport import Source, Transports, via_value

ClientKey = tuple[str, str]


def new_branch() -> str:
    return f"{MAGIC_COOKIE}{random.getrandbits(80):020x}"


class ClientTransactions:
    """The table of our non-INVITE client transactions, keyed by (branch, method)."""

    def __init__(self, transports: Transports, make_link: Callable[[Source], Link]) -> None:
        self._transports = transports
        self._make_link = make_link
        self._table: dict[ClientKey, tuple[NonInviteClientTransaction, Source]] = {}

    def __len__(self) -> int:
        return len(self._table)

    def start(self, request: SipRequest, destination: Source) -> asyncio.Future[SipResponse | None]:
        """Stamp a Via, send with retransmissions; the future gets the final response, or None
        on timeout or transport failure."""
        transport, host, _ = destination
        local_host, local_port = self._transports.local_address(transport, host)
        branch = new_branch()
        request.headers.insert(0, ("Via", via_value(transport, local_host, local_port, branch)))
        if request.get("Max-Forwards") is None:
            request.headers.insert(1, ("Max-Forwards", "70"))
        future: asyncio.Future[SipResponse | None] = asyncio.get_running_loop().create_future()

        def on_result(response: SipResponse | None) -> None:
            if not future.done():
                future.set_result(response)

        key = (branch, request.method)
        txn = NonInviteClientTransaction(key, self._make_link(destination), request, on_result)
        self._table[key] = (txn, destination)
        txn.start()
        return future

    def on_response(self, response: SipResponse) -> bool:
        """Give a response to its transaction; False when none matches."""
        entry = self._table.get((response.top_via.branch or "", response.cseq[1]))
        if entry is None:
            return False
        entry[0].on_response(response)
        return True

    def on_send_failed(self, destination: Source) -> None:
        for txn, target in list(self._table.values()):
            if target == destination:
                txn.on_transport_error()

    def forget(self, key: tuple[str, ...]) -> None:
        self._table.pop((key[0], key[-1]), None)
