"""The endpoint's counters (``SipEndpoint.stats``, exported on ``/metrics``).

Counted where the event happens: the receiver (messages in, parse errors, drops, overload
sheds), the request dispatcher (overload refusals, unmatched ACKs) and the endpoint's send path
(messages out). A leaf, so each of them can count without importing the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class EndpointStats:
    messages_in: int = 0
    messages_out: int = 0
    parse_errors: int = 0
    dropped: int = 0
    rejected_overload: int = 0
    transactions: int = 0
    in_flight: int = 0
    dialogs: int = 0


__all__ = ["EndpointStats"]
