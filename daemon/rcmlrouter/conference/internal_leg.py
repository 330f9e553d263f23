"""Joining a conference that lives on another node: the internal SIP leg's address and who may
place one.

A participant whose call landed on node B while the room lives on node A joins through a SIP
leg from B to A (placed like a ``<Dial><Sip>``: B bridges the caller to it, so the caller's RTP
goes to A, which mixes it like any local participant). The leg's Request-URI carries the join:
user ``rcmlconf-{CF}-{CA}`` (the conference and the caller's CallSid, so A's API and events name
the real call) and URI parameters for the caller's ``<Conference>`` attributes (``muted``,
``beep``, ``start``, ``end``, ``coach``, ``label``, ``wait``, ``waitmethod``: lower case, as URI
parameter names are case-insensitive). A accepts such an INVITE only from the SIP host of a live
node of the cluster (the ``nodes`` table), and only for a room it has; the conference sid (128
random bits) is the capability.

Pure (no SIP here: the call wing builds and reads the URI), plus the one store read that finds a
live node's SIP address.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from rcmlrouter.conference.participant import Settings
from rcmlrouter.config import parse_sip_listen
from rcmlrouter.store.base import Store

PREFIX: Final = "rcmlconf-"
_USER: Final = re.compile(r"rcmlconf-(CF[0-9a-f]{32})-(CA[0-9a-f]{32})\Z")
_CALL_SID: Final = re.compile(r"CA[0-9a-f]{32}\Z")


@dataclass(frozen=True, slots=True)
class InternalJoin:
    """What the owning node needs to put a caller of another node in its room."""

    conference_sid: str
    call_sid: str
    settings: Settings
    wait_url: str | None = None  # None: the default sound; "": silence
    wait_method: str = "POST"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def encode(join: InternalJoin) -> tuple[str, dict[str, str]]:
    """(Request-URI user, URI parameters) of the internal leg."""
    settings = join.settings
    params = {
        "muted": _flag(settings.muted),
        "beep": settings.beep,
        "start": _flag(settings.start_conference_on_enter),
        "end": _flag(settings.end_conference_on_exit),
    }
    if settings.coach:
        params["coach"] = settings.coach
    if settings.label:
        params["label"] = quote(settings.label, safe="")
    if join.wait_url is not None:
        params["wait"] = quote(join.wait_url, safe="")
        params["waitmethod"] = join.wait_method
    return f"{PREFIX}{join.conference_sid}-{join.call_sid}", params


def decode(user: str, params: dict[str, str | None]) -> InternalJoin | None:
    """The join an internal leg's Request-URI carries; None when it is not one (or malformed)."""
    found = _USER.match(user)
    if found is None:
        return None

    def flag(name: str, default: bool) -> bool:
        value = params.get(name)
        return default if value is None else value == "true"

    coach = params.get("coach") or None
    if coach is not None and not _CALL_SID.match(coach):
        return None
    beep = params.get("beep") or "true"
    if beep not in ("true", "false", "onEnter", "onExit"):
        return None
    wait = params.get("wait")
    settings = Settings(
        muted=flag("muted", False),
        beep=beep,
        start_conference_on_enter=flag("start", True),
        end_conference_on_exit=flag("end", False),
        coach=coach,
        label=unquote(params.get("label") or "") or None,
    )
    method = "GET" if params.get("waitmethod") == "GET" else "POST"
    wait_url = None if wait is None else unquote(wait)
    return InternalJoin(found.group(1), found.group(2), settings, wait_url, method)


async def live_nodes(store: Store, lease: float) -> dict[str, tuple[str, int]]:
    """Every node whose heartbeat is younger than ``lease``: its SIP (UDP) host and port."""
    now = time.time()
    found = {}
    for node in await store.list_nodes():
        if now - node.heartbeat_at > lease:
            continue
        for listen in node.sip.split(","):
            parsed = parse_sip_listen(listen.strip())
            if parsed is not None and parsed[0] == "udp":
                found[node.node_id] = (parsed[1], parsed[2])
                break
    return found
