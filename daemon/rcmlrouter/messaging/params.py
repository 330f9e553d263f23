"""SMS webhook parameters (SPEC §3.1, §5): Restcomm's names and Twilio's for the same data.

Built from the stored :class:`~rcmlrouter.store.records.MessageRecord` alone (the X- headers are
kept with it), so a message processed after a restart is posted exactly as it would have been.
"""

from __future__ import annotations

from collections.abc import Iterable

from rcmlrouter.sip.message import Header
from rcmlrouter.sms_format import num_segments
from rcmlrouter.store.records import API_VERSION, MessageRecord

__all__ = ["message_params", "num_segments", "x_headers"]


def x_headers(headers: Iterable[Header]) -> dict[str, str]:
    """The request's ``X-`` headers by name; of a repeated header the last value, as in a
    call's SipHeader_ parameters."""
    return {name: value for name, value in headers if name[:2] in ("X-", "x-")}


def message_params(record: MessageRecord, api_version: str = API_VERSION) -> dict[str, str]:
    """The parameters of the SMS URL request (and of action / Redirect fetches);
    ``api_version`` is the number's (2010-04-01 when bought through the Twilio alias)."""
    params = {
        "SmsSid": record.sid,
        "MessageSid": record.sid,
        "AccountSid": record.account_sid,
        "From": record.from_,
        "To": record.to,
        "Body": record.body,
        "ApiVersion": api_version,
        "NumMedia": "0",
        "NumSegments": str(num_segments(record.body)),
        "SmsStatus": "received",
        "Direction": "inbound",
    }
    for name, value in record.sip_headers.items():
        params[f"SipHeader_{name}"] = value
    return params
