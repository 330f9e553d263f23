"""Pieces of the outgoing-call tests: SIPp as the callee (a UAS scenario on a free port)."""

from __future__ import annotations

from sip_harness import SCENARIOS, SDP_OFFER

import support.sipp_uas
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.outgoing import OutgoingCall


class SippUas(support.sipp_uas.SippUas):
    """SIPp as the far end of our outgoing calls (scenarios in tests/sip/scenarios)."""

    scenarios = SCENARIOS


def call(endpoint: SipEndpoint, uri: str, **kwargs: object) -> OutgoingCall:
    """An outgoing call from alice with our SDP offer."""
    return endpoint.start_call(
        uri,
        from_uri="sip:+14155550100@127.0.0.1",
        from_display="Alice",
        headers=[("X-Test", "1")],
        sdp=SDP_OFFER.encode(),
        **kwargs,  # type: ignore[arg-type]
    )


def tables_empty(endpoint: SipEndpoint) -> bool:
    """Nothing of a finished call left in the endpoint."""
    return (
        endpoint.transaction_count == 0
        and endpoint.dialog_count == 0
        and endpoint.in_flight == 0
        and endpoint.outgoing_calls == 0
    )
