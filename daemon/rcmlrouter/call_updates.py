"""What ``POST Accounts/{AC}/Calls/{CA}`` asks of a live call, and how it came out.

A value shared by the three parts of live call control, none of which imports another: the API
(``api/call_update.py``) validates the request into a :class:`CallUpdate`; the node that runs the
call applies it (``calls/live_control.py``); between two nodes it travels as JSON
(``cluster/call_commands.py``: PostgreSQL NOTIFY with a reply). :class:`CallControl` is the seam
the API talks to; the composition root wires it (``assembly/call_control.py``).
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

# How an update came out (UpdateResult.outcome)
APPLIED: Final = "applied"  # done (a hang-up: the call has ended and its record is durable)
IGNORED: Final = "ignored"  # Status=canceled on an answered call: Twilio leaves it alone
ENDED: Final = "ended"  # the call is not running (any more): 21220
UNREACHABLE: Final = "unreachable"  # the node that runs the call did not answer in time
INVALID: Final = "invalid"  # the owning node could not use it (its Twiml did not parse there)
UNSUPPORTED: Final = "unsupported"  # this kind of call cannot do it (its callbacks cannot move)

CANCELED: Final = "canceled"
COMPLETED: Final = "completed"
API_HANGUP: Final = "api-hangup"  # LiveCall.interrupt cause of Status=completed


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """One validated update. ``url`` or ``twiml`` redirects (``twiml`` wins when both came);
    ``status`` ends the call (``completed``) or cancels it while not answered (``canceled``);
    ``status_callback`` (``""``: no more callbacks) sends the remaining events elsewhere."""

    status: str | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    base_url: str | None = None  # relative URLs inside ``twiml`` resolve against it

    @property
    def redirects(self) -> bool:
        return self.url is not None or self.twiml is not None

    @property
    def empty(self) -> bool:
        return self.status is None and not self.redirects and self.status_callback is None

    def to_wire(self) -> dict[str, str]:
        """Its fields for a JSON NOTIFY payload (compact: defaults left out, a long ``Twiml``
        deflated: a payload holds at most 8,000 bytes)."""
        fields = {k: v for k, v in asdict(self).items() if v is not None and v != "POST"}
        twiml = fields.pop("twiml", None)
        if twiml is not None:
            if len(twiml) > 512:
                packed = base64.b64encode(zlib.compress(twiml.encode(), 6)).decode()
                fields["twiml_z"] = packed
            else:
                fields["twiml"] = twiml
        return fields

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> CallUpdate:
        values = {k: str(v) for k, v in fields.items() if k in _FIELDS}
        if "twiml_z" in fields:
            values["twiml"] = zlib.decompress(base64.b64decode(str(fields["twiml_z"]))).decode()
        return cls(**values)


_FIELDS = frozenset(CallUpdate.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """How an update came out; ``detail`` says why for the log and the error message."""

    outcome: str
    detail: str = ""


class CallControl(Protocol):
    """Applies an update to the live call ``call_sid`` wherever it runs (``owner``: the node
    its record names; None on SQLite or when unknown)."""

    async def update(
        self, call_sid: str, owner: str | None, update: CallUpdate
    ) -> UpdateResult: ...
