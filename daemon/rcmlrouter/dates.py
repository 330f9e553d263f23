"""Dates as Restcomm and Twilio print them: RFC 2822 in GMT (``Mon, 04 Nov 2013 12:14:11 +0000``).

One implementation for the API's renderings and the webhook / callback parameters of calls and
messages (a call formats several; ``email.utils.formatdate`` costs ~4x as much).
"""

from __future__ import annotations

import time

__all__ = ["rfc2822"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_last: tuple[int, str] = (-1, "")  # the second formatted last: a busy second formats it often


def rfc2822(timestamp: float) -> str:
    """``Mon, 04 Nov 2013 12:14:11 +0000`` for POSIX seconds (the same as
    ``email.utils.format_datetime`` of the aware UTC datetime)."""
    global _last
    second = int(timestamp)
    if second == _last[0] and timestamp >= 0:
        return _last[1]
    t = time.gmtime(timestamp)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    if timestamp >= 0:
        _last = (second, text)
    return text
