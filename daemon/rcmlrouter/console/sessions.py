"""Console sessions: kept in this process's memory, named by a random cookie.

A session remembers the account that signed in and how: with its AuthToken (kept here, never in
the cookie, and checked again on every request through the API's authentication, so a token
rotated out of its grace period, a suspended or closed account ends the session) or with email
and password (the session ends when the password hash or the account's status changes). It
expires ``timeout`` seconds after its last request, and after :data:`MAX_AGE` in any case.
Sign-out forgets it at once. A restart forgets every session; in a cluster a session belongs to
the node that issued it (the console is per node, like its API address).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web

COOKIE = "rcmlrouter_console"
MAX_AGE = 12 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class Session:
    """``secret``: the AuthToken (``method`` "token") or the password hash seen at sign-in
    ("password"); ``csrf``: the token every form of this session carries."""

    account_sid: str
    method: str
    secret: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf.encode(), given.encode())


class SessionStore:
    """Sessions by cookie value, least recently used dropped first beyond ``size``."""

    def __init__(self, timeout: float, size: int = MAX_SESSIONS) -> None:
        self.timeout = timeout
        self.size = size
        self._items: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def open(self, session: Session) -> str:
        """Keep ``session``; the cookie value that names it."""
        key = secrets.token_urlsafe(32)
        self._items[key] = session
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return key

    def get(self, key: str | None) -> Session | None:
        """The live session named ``key`` (its idle time restarts), else None."""
        if not key:
            return None
        session = self._items.get(key)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.seen > self.timeout or now - session.created > MAX_AGE:
            del self._items[key]
            return None
        session.seen = now
        self._items.move_to_end(key)
        return session

    def close(self, key: str | None) -> None:
        if key:
            self._items.pop(key, None)


def is_https(request: web.Request) -> bool:
    """Served over https, directly or behind a proxy that says so (only ever adds Secure)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, path /console/, Secure over https."""
    response.set_cookie(
        name,
        value,
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/console/")
