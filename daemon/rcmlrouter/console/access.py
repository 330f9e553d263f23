"""Who may open a console page, and what a failure looks like.

:func:`page` wraps every console handler: without a live session the request is sent to the
sign-in page (303); a POST, PUT or DELETE must carry the session's CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``) and, when the browser sends ``Origin``, come from
this origin, else 403; the acting account (``?account=``) must be in the viewer's reach by the
API's own rule (:func:`~rcmlrouter.api.auth.account_in_reach`). Errors become HTML pages here
(the API's error middleware around them only ever sees responses).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import structlog
from aiohttp import web

from rcmlrouter.api.auth import account_in_reach, authenticate_credentials
from rcmlrouter.api.context import accounts_of, store_of
from rcmlrouter.console.sessions import COOKIE, Session, SessionStore
from rcmlrouter.console.templating import html, see_other
from rcmlrouter.console.visit import VISIT_KEY, Visit
from rcmlrouter.errors import ApiError, NotFoundError, StoreUnavailableError
from rcmlrouter.store.records import Account

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSIONS_KEY = web.AppKey("console_sessions", SessionStore)
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def page(handler: Handler) -> Handler:
    """A page that needs a session (see the module docstring)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        async def run() -> web.StreamResponse:
            visit = await open_visit(request)
            if visit is None:
                return _to_sign_in(request)
            if request.method in UNSAFE_METHODS:
                await check_form_origin(request, visit.session.csrf_matches)
            request[VISIT_KEY] = visit
            return await handler(request)

        return await as_html(request, run)

    return guarded


async def as_html(
    request: web.Request, run: Callable[[], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``run()``, with every failure turned into an HTML error page."""
    try:
        return await run()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_page(request, exc.status, exc.reason)
    except ApiError as exc:
        return error_page(request, exc.http_status, f"{exc.code}: {exc.message}")
    except StoreUnavailableError:
        response = error_page(request, 503, "The database is unavailable; try again shortly.")
        response.headers["Retry-After"] = "5"
        return response
    except Exception:
        log.exception("console.unhandled_error", method=request.method, path=request.path)
        return error_page(request, 500, "Internal error (logged).")


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return html(request, "error.html", status=status, status_code=status, message=message)


def _to_sign_in(request: web.Request) -> web.Response:
    target = request.path_qs if request.method == "GET" else "/console/"
    return see_other(f"/console/signin?next={quote(target, safe='')}")


async def check_form_origin(request: web.Request, token_ok: Callable[[str | None], bool]) -> None:
    """403 unless the request comes from this origin and carries a valid CSRF token."""
    origin = request.headers.get("Origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.host):
        raise web.HTTPForbidden(reason="Cross-origin form submission refused")
    token = request.headers.get("X-CSRF-Token")
    if token is None:
        try:
            form = await request.post()
        except ValueError as exc:
            raise web.HTTPBadRequest(reason="Malformed form body") from exc
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not token_ok(token):
        raise web.HTTPForbidden(reason="Missing or invalid CSRF token: reload the page")


async def open_visit(request: web.Request) -> Visit | None:
    """The request's visit, or None without a live session (an invalid one is closed)."""
    sessions = request.app[SESSIONS_KEY]
    key = request.cookies.get(COOKIE)
    session = sessions.get(key)
    if session is None:
        return None
    viewer = await session_account(request, session)
    if viewer is None:
        sessions.close(key)
        return None
    acting_sid = request.query.get("account") or viewer.sid
    acting = await account_in_reach(store_of(request), viewer, acting_sid)
    return Visit(session, viewer, acting)


async def session_account(request: web.Request, session: Session) -> Account | None:
    """The session's account while its credential still holds (see ``sessions.py``)."""
    if session.method == "token":
        try:
            return await authenticate_credentials(request, session.account_sid, session.secret)
        except ApiError as exc:
            if exc.http_status == 401:
                return None
            raise
    cache = accounts_of(request)
    account = cache.get(session.account_sid)
    if account is None:
        try:
            account = await store_of(request).get_account(session.account_sid)
        except NotFoundError:
            return None
        cache.put(account.sid, account)
    if account.status != "active" or account.password_hash != session.secret:
        return None
    return account
