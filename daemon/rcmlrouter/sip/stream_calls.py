"""Calls that arrived on an accepted TCP/TLS connection, by connection.

When such a connection closes, a call whose next hop (its Contact, or first Route) is the
connection's own address has no other way to reach the caller (the caller's port was an
ephemeral one, nothing listens there): the call ends with ``transport-error``. A call whose
Contact names another address (a listening port, a proxy) stays; requests to it open a new
connection. While a connection carries calls it is not closed for being idle.
"""

from __future__ import annotations

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.call import IncomingCall
from rcmlrouter.sip.transport import Source
from rcmlrouter.sip.uri import bare_host


class StreamCalls:
    def __init__(self) -> None:
        self._by_connection: dict[Source, set[IncomingCall]] = {}
        self.ended = 0  # calls ended because their connection closed

    def add(self, call: IncomingCall) -> None:
        if call.source[0] != "udp":
            self._by_connection.setdefault(call.source, set()).add(call)

    def discard(self, call: IncomingCall) -> None:
        calls = self._by_connection.get(call.source)
        if calls is not None:
            calls.discard(call)
            if not calls:
                del self._by_connection[call.source]

    def in_use(self, source: Source) -> bool:
        return source in self._by_connection

    def closed(self, source: Source) -> None:
        for call in list(self._by_connection.pop(source, ())):
            if _unreachable_without(call, source):
                self.ended += 1
                call.finish("transport-error")


def _unreachable_without(call: IncomingCall, source: Source) -> bool:
    try:
        hop = call.dialog.next_hop()
    except SipParseError:
        return True
    return (bare_host(hop.host), hop.port or 5060) == (source[1], source[2])


__all__ = ["StreamCalls"]
