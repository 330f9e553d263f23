"""What the modules of a call reach beyond the call itself, handed down explicitly.

:class:`CallWiring` is built by the supervisor, complete and frozen: the shared services, the
dialer that places ``<Dial>`` legs (the SIP endpoint, attached once it exists: the endpoint
needs the supervisor to take INVITEs, the supervisor needs the endpoint to place calls), and the
supervisor itself as :class:`TransferredCalls` (a call a transfer leaves running is one of its
tasks). Every call the supervisor runs gets the same wiring; nothing changes it afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from rcmlrouter.calls.call_events import notify_call
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.dialed_leg import DialedLeg, Dialer
from rcmlrouter.calls.in_dialog import InDialog
from rcmlrouter.rcml.model import Document
from rcmlrouter.services import Services


@dataclass(frozen=True, slots=True)
class Handover:
    """A dialed leg leaving its bridge to run ``document`` as a call of its own (the caller
    transferred): its in-dialog owner goes with it; ``state`` is the call that dialed it;
    ``params`` are ``ReferTarget``, ``Transferor``, ``Transferee``."""

    leg: DialedLeg
    in_dialog: InDialog
    state: CallState
    document: Document
    params: Mapping[str, str]


class TransferredCalls(Protocol):
    """Runs transferred calls (the supervisor)."""

    def run_transferred(self, handover: Handover) -> None: ...


@dataclass(frozen=True, slots=True)
class CallWiring:
    """The services, dialer and supervisor every call of one process shares."""

    services: Services
    dialer: Dialer | None
    """Places ``<Dial>`` legs; None until SIP is attached (a Dial then fails with 503)."""
    transferred: TransferredCalls

    def notify(
        self, state: CallState, error_code: int, message: str, url: str | None = None
    ) -> None:
        """Record a notification about the call ``state`` describes."""
        notify_call(
            self.services.notifications, state.account_sid, state.call_sid, error_code, message, url
        )
