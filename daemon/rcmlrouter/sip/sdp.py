"""SDP offer/answer for one audio stream (RFC 4566, RFC 3264), sans-I/O.

We speak PCMU (0) and PCMA (8) at 8 kHz plus telephone-event (RFC 4733), 20 ms packets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rcmlrouter.errors import SipError, SipParseError
from rcmlrouter.sip.uri import ascii_int

STATIC_CODECS = {0: "PCMU", 8: "PCMA"}
SUPPORTED = ("PCMU", "PCMA")
PTIME_MS = 20


class SdpNegotiationError(SipError):
    """No codec in common: answered with 488 Not Acceptable Here."""

    sip_status = 488
    default_reason = "Not Acceptable Here"


@dataclass(slots=True)
class AudioOffer:
    """The parts of a remote SDP we use."""

    connection_ip: str
    port: int
    payload_types: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt -> "name/rate"
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int | None = None

    def codec_name(self, pt: int) -> str | None:
        if pt in self.rtpmap:
            return self.rtpmap[pt].split("/")[0].upper()
        return STATIC_CODECS.get(pt)

    @property
    def telephone_event_pt(self) -> int | None:
        for pt in self.payload_types:
            entry = self.rtpmap.get(pt, "")
            if entry.lower().startswith("telephone-event/8000"):
                return pt
        return None


@dataclass(frozen=True, slots=True)
class AudioAnswer:
    """What we agreed: the codec to send, its payload type, DTMF payload type, remote address."""

    codec: str
    payload_type: int
    telephone_event_pt: int | None
    remote_ip: str
    remote_port: int
    sdp: bytes


def _media_line(value: str) -> tuple[int, list[int]]:
    parts = value.split()
    port = ascii_int(parts[1], 5) if len(parts) >= 4 else None
    types = [ascii_int(p, 3) for p in parts[3:]]
    if port is None:
        raise SipParseError("malformed m= line")
    if None in types:
        raise SipParseError("malformed payload type in m= line")
    return port, [t for t in types if t is not None]


def _attribute(offer: AudioOffer, value: str) -> None:
    name, _, rest = value.partition(":")
    if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
        offer.direction = name
    elif name in ("rtpmap", "fmtp"):
        pt_text, _, params = rest.partition(" ")
        payload_type = ascii_int(pt_text, 3)
        if payload_type is not None:
            target = offer.rtpmap if name == "rtpmap" else offer.fmtp
            target[payload_type] = params.strip()
    elif name == "ptime" and (ptime := ascii_int(rest.strip(), 4)) is not None:
        offer.ptime = ptime


def parse_offer(body: bytes) -> AudioOffer:
    """The first audio stream of an SDP body. Raises SipParseError when there is none."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("SDP is not UTF-8") from exc
    session_ip = ""
    offer: AudioOffer | None = None
    for raw in text.splitlines():
        kind, eq, value = raw.strip().partition("=")
        if not eq or len(kind) != 1:
            continue
        if kind == "m":
            if offer is not None:
                break  # only the first audio stream
            if value.startswith("audio "):
                port, pts = _media_line(value)
                offer = AudioOffer(session_ip, port, pts)
        elif kind == "c":
            address = value.split()[-1].split("/")[0] if value.split() else ""
            if offer is None:
                session_ip = address
            else:
                offer.connection_ip = address
        elif kind == "a" and offer is not None:
            _attribute(offer, value)
    if offer is None or not offer.connection_ip:
        raise SipParseError("SDP has no audio stream with a connection address")
    return offer


def _session_lines(local_ip: str, session_id: int) -> list[str]:
    family = "IP6" if ":" in local_ip else "IP4"
    return [
        "v=0",
        f"o=rcmlrouter {session_id} {session_id} IN {family} {local_ip}",
        "s=rcmlrouter",
        f"c=IN {family} {local_ip}",
        "t=0 0",
    ]


def _media_lines(port: int, codecs: list[tuple[int, str]], event_pt: int | None) -> list[str]:
    pts = [pt for pt, _ in codecs] + ([event_pt] if event_pt is not None else [])
    lines = [f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt in pts)}"]
    lines.extend(f"a=rtpmap:{pt} {name}/8000" for pt, name in codecs)
    if event_pt is not None:
        lines.append(f"a=rtpmap:{event_pt} telephone-event/8000")
        lines.append(f"a=fmtp:{event_pt} 0-16")
    lines.append(f"a=ptime:{PTIME_MS}")
    return lines


def _choose_codec(offer: AudioOffer) -> tuple[int, str]:
    for pt in offer.payload_types:
        name = offer.codec_name(pt)
        if name is not None and name in SUPPORTED:
            return pt, name
    raise SdpNegotiationError("no common audio codec (PCMU/PCMA)")


def build_answer(offer: AudioOffer, local_ip: str, rtp_port: int) -> AudioAnswer:
    """Answer with the first offered codec we support (+ telephone-event if offered)."""
    pt, name = _choose_codec(offer)
    event_pt = offer.telephone_event_pt
    direction = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(offer.direction, "")
    lines = _session_lines(local_ip, random.randint(1, 2**31))
    lines += _media_lines(rtp_port, [(pt, name)], event_pt)
    lines.append(f"a={direction or offer.direction}")
    sdp = ("\r\n".join(lines) + "\r\n").encode()
    return AudioAnswer(name, pt, event_pt, offer.connection_ip, offer.port, sdp)


def build_offer(local_ip: str, rtp_port: int, event_pt: int = 101) -> bytes:
    """An offer for an outbound leg: PCMU, PCMA, telephone-event."""
    lines = _session_lines(local_ip, random.randint(1, 2**31))
    lines += _media_lines(rtp_port, [(0, "PCMU"), (8, "PCMA")], event_pt)
    lines.append("a=sendrecv")
    return ("\r\n".join(lines) + "\r\n").encode()
