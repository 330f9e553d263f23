"""What an SMS is on the wire, shared by the API (validating a message to send) and messaging
(sending it, describing a received one): the body limit, the segment count, the address forms.

A leaf: it imports nothing of the daemon, so the API can use it without reaching into
``messaging/`` (tests/test_layers.py).

Segments (GSM 03.38 / 3GPP TS 23.040): a body whose every character is in the GSM-7 default
alphabet or its extension table is sent as GSM-7 (an extension character costs two septets, an
escape and the character, which are never split between two parts): one segment carries 160
septets, a part of a concatenated message 153. Any other body is UCS-2: 70 UTF-16 code units in
one segment, 67 per part (a surrogate pair is never split).
"""

from __future__ import annotations

import re

MAX_BODY_CHARACTERS = 1600  # Twilio's limit for one (concatenated) message

# GSM 03.38 default alphabet and its extension table (each extension character costs two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_PART = 160, 153  # septets
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units

# A phone number as the SMS gateway's Request-URI user: digits with an optional leading +,
# vanity letters and the visual separators people type.
PHONE_NUMBER = re.compile(r"\+?[0-9A-Za-z*#().-]{1,64}\Z")


def _gsm7_costs(body: str) -> list[int] | None:
    """Septets per character, or None when a character is outside GSM-7."""
    costs: list[int] = []
    for ch in body:
        if ch in GSM7_BASIC:
            costs.append(1)
        elif ch in GSM7_EXTENDED:
            costs.append(2)
        else:
            return None
    return costs


def _parts(costs: list[int], single: int, part: int) -> int:
    """Segments for characters of these costs: one when they fit ``single``, else parts of at
    most ``part`` units, a character never split between two."""
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


def num_segments(body: str) -> int:
    """How many SMS segments ``body`` takes (GSM-7 160/153 septets, else UCS-2 70/67)."""
    costs = _gsm7_costs(body)
    if costs is not None:
        return _parts(costs, GSM7_SINGLE, GSM7_PART)
    return _parts([2 if ord(ch) > 0xFFFF else 1 for ch in body], UCS2_SINGLE, UCS2_PART)


def encoding_of(body: str) -> str:
    """``GSM-7`` or ``UCS-2``: how ``body`` is counted."""
    return "GSM-7" if _gsm7_costs(body) is not None else "UCS-2"


def is_phone_number(text: str) -> bool:
    """True for a phone-number address (sent through the SMS gateway)."""
    return PHONE_NUMBER.match(text) is not None
