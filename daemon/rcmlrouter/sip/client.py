"""Client transactions of the endpoint (non-INVITE and INVITE): Via stamping, matching
responses, transport failures, how many are still waiting for a final response."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from rcmlrouter.sip.invite_client import InviteClientTransaction, ResponseCallback
from rcmlrouter.sip.message import SipRequest, SipResponse
from rcmlrouter.sip.transaction import MAGIC_COOKIE, Link, NonInviteClientTransaction
from rcmlrouter.sip.transport import Source, Transports
from rcmlrouter.sip.via import via_value

ClientKey = tuple[str, str]
ClientTransaction = NonInviteClientTransaction | InviteClientTransaction
CLIENT_TRANSACTIONS = (NonInviteClientTransaction, InviteClientTransaction)


def new_branch() -> str:
    return f"{MAGIC_COOKIE}{random.getrandbits(80):020x}"


class ClientTransactions:
    """The table of our client transactions, keyed by (branch, method). ``in_flight`` counts
    those without a final response yet (the owner calls :meth:`settled`)."""

    def __init__(self, transports: Transports, make_link: Callable[[Source], Link]) -> None:
        self._transports = transports
        self._make_link = make_link
        self._table: dict[ClientKey, tuple[ClientTransaction, Source]] = {}
        self.in_flight = 0

    def __len__(self) -> int:
        return len(self._table)

    def _stamp(
        self, request: SipRequest, destination: Source, via: str | None, branch: str | None = None
    ) -> str:
        """Put our Via on top (``via``: a given one, e.g. the INVITE's for its CANCEL;
        ``branch``: a given branch, e.g. a stored request sent again after a restart)."""
        if via is None:
            transport, host, _ = destination
            local_host, local_port = self._transports.local_address(transport, host)
            via = via_value(transport, local_host, local_port, branch or new_branch())
        request.headers.insert(0, ("Via", via))
        if request.get("Max-Forwards") is None:
            request.headers.insert(1, ("Max-Forwards", "70"))
        return request.top_via.branch or ""

    def start(
        self,
        request: SipRequest,
        destination: Source,
        *,
        via: str | None = None,
        branch: str | None = None,
    ) -> asyncio.Future[SipResponse | None]:
        """Stamp a Via, send with retransmissions; the future gets the final response, or None
        on timeout or transport failure."""
        branch = self._stamp(request, destination, via, branch)
        future: asyncio.Future[SipResponse | None] = asyncio.get_running_loop().create_future()

        def on_result(response: SipResponse | None) -> None:
            if not future.done():
                future.set_result(response)

        key = (branch, request.method)
        txn = NonInviteClientTransaction(key, self._make_link(destination), request, on_result)
        self._table[key] = (txn, destination)
        self.in_flight += 1
        txn.start()
        return future

    def start_invite(
        self,
        request: SipRequest,
        destination: Source,
        on_result: ResponseCallback,
        on_provisional: Callable[[SipResponse], None],
    ) -> InviteClientTransaction:
        """Stamp a Via and start an INVITE client transaction (its callbacks: see there)."""
        key = (self._stamp(request, destination, None), "INVITE")
        link = self._make_link(destination)
        txn = InviteClientTransaction(key, link, request, on_result, on_provisional)
        self._table[key] = (txn, destination)
        self.in_flight += 1
        txn.start()
        return txn

    def settled(self) -> None:
        """A transaction got its final response (or ended without one)."""
        self.in_flight -= 1

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
