"""One request's view of the console: who is signed in, which account the page is about."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from rcmlrouter.console.sessions import Session
from rcmlrouter.store.records import Account


@dataclass(frozen=True, slots=True)
class Visit:
    """``viewer``: the signed-in account; ``acting``: the account the page shows (the viewer
    or one of its descendants, chosen with ``?account=``, checked with the API's rule)."""

    session: Session
    viewer: Account
    acting: Account

    def url(self, path: str, **params: str | int | None) -> str:
        """A console URL that keeps the acting account unless ``account`` is given (``path``
        is under ``/console/``)."""
        query = {k: str(v) for k, v in params.items() if v is not None and v != ""}
        if self.acting.sid != self.viewer.sid:
            query.setdefault("account", self.acting.sid)
        suffix = f"?{urlencode(query)}" if query else ""
        return f"/console/{path.lstrip('/')}{suffix}"


VISIT_KEY = web.RequestKey("console_visit", Visit)


def visit_of(request: web.Request) -> Visit:
    return request[VISIT_KEY]
