"""ICMP errors for our UDP datagrams, read from a Linux socket's error queue (sans-I/O part).

With ``IP_RECVERR`` / ``IPV6_RECVERR`` set on the SIP UDP socket, an ICMP "port unreachable"
(nothing listens there) or "host / network unreachable" for a datagram we sent is queued on the
socket with the datagram's destination. RFC 3261 §18.4 treats it as a transport error: the
transactions to that destination fail at once (an INVITE to a dead callee ends ``failed``
instead of retransmitting until Timer B). ``sip/transport.py`` owns the socket and reads the
queue (``recvmsg(..., MSG_ERRQUEUE)``); this module says what one entry means.
"""

from __future__ import annotations

import errno
import struct
from typing import Final

IPPROTO_IP: Final = 0
IPPROTO_IPV6: Final = 41
IP_RECVERR: Final = 11  # Linux <linux/in.h>
IPV6_RECVERR: Final = 25  # Linux <linux/in6.h>
SO_EE_ORIGIN_ICMP: Final = 2
SO_EE_ORIGIN_ICMP6: Final = 3
# struct sock_extended_err: ee_errno (u32), ee_origin, ee_type, ee_code, ee_pad (u8), ee_info,
# ee_data (u32); the offender's sockaddr follows
_EXTENDED_ERR = struct.Struct("=IBBBBII")
# the errors that say "no one will answer there" (not "fragmentation needed" and the like)
UNREACHABLE: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})

Ancillary = list[tuple[int, int, bytes]]


def recverr_option(ipv6: bool) -> tuple[int, int]:
    """``(level, option)`` that turns the error queue on for a UDP socket of that family."""
    return (IPPROTO_IPV6, IPV6_RECVERR) if ipv6 else (IPPROTO_IP, IP_RECVERR)


def unreachable_error(ancillary: Ancillary) -> int | None:
    """The errno of an ICMP "unreachable" report in one error-queue entry, else None (a local
    error, another ICMP type, or no report at all)."""
    for level, kind, data in ancillary:
        if (level, kind) not in ((IPPROTO_IP, IP_RECVERR), (IPPROTO_IPV6, IPV6_RECVERR)):
            continue
        if len(data) < _EXTENDED_ERR.size:
            continue
        code, origin, *_ = _EXTENDED_ERR.unpack_from(data)
        if origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6) and code in UNREACHABLE:
            return int(code)
    return None


__all__ = ["Ancillary", "recverr_option", "unreachable_error"]
