"""Sign-in (AccountSid or email + AuthToken, or email + password) and sign-out.

Credentials go through the API's authentication (:mod:`rcmlrouter.api.auth`), so failures count
against the address exactly as API failures do (``[api] auth_fail_limit``, then 429). The
sign-in form has no session yet: its CSRF token is a random value in a SameSite=Strict cookie
that the form repeats (double submit), and a browser-sent ``Origin`` must be this origin.
"""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from rcmlrouter.api.auth import authenticate_credentials, authenticate_password
from rcmlrouter.console.access import SESSIONS_KEY, as_html, check_form_origin, open_visit, page
from rcmlrouter.console.sessions import COOKIE, Session, clear_cookie, set_cookie
from rcmlrouter.console.templating import html, see_other
from rcmlrouter.errors import ApiError
from rcmlrouter.store.records import Account

SIGNIN_COOKIE = "rcmlrouter_console_signin"
_TOKEN_SHAPE = re.compile(r"[0-9a-f]{32}")
FAILED = "Sign-in failed: check the AccountSid (or email) and the AuthToken (or password)."


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if value and value.startswith("/console/") and "\\" not in value and "//" not in value:
        return value
    return "/console/"


async def show_sign_in(request: web.Request) -> web.StreamResponse:
    async def run() -> web.StreamResponse:
        target = safe_next(request.query.get("next"))
        if await open_visit(request) is not None:
            return see_other(target)
        return _form(request, target)

    return await as_html(request, run)


def _form(request: web.Request, target: str, error: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = html(request, "signin.html", status, csrf=token, next=target, error=error)
    set_cookie(response, request, SIGNIN_COOKIE, token)
    return response


async def submit_sign_in(request: web.Request) -> web.StreamResponse:
    async def run() -> web.StreamResponse:
        expected = request.cookies.get(SIGNIN_COOKIE, "")
        await check_form_origin(
            request, lambda given: bool(expected) and secrets.compare_digest(expected, given or "")
        )
        form = await request.post()
        user, secret = str(form.get("user", "")).strip(), str(form.get("secret", ""))
        target = safe_next(str(form.get("next", "")))
        try:
            session = await _authenticate(request, user, secret)
        except ApiError as exc:
            if exc.http_status not in (401, 429):
                raise
            message = FAILED if exc.http_status == 401 else exc.message
            return _form(request, target, message, exc.http_status)
        response = see_other(target)
        set_cookie(response, request, COOKIE, request.app[SESSIONS_KEY].open(session))
        clear_cookie(response, SIGNIN_COOKIE)
        return response

    return await as_html(request, run)


async def _authenticate(request: web.Request, user: str, secret: str) -> Session:
    """A session for these credentials: an AuthToken for an AccountSid (or an email with a
    token-shaped secret), else a password for an email."""
    if not user or not secret:
        raise ApiError(401, 20003, FAILED)
    if "@" not in user or _TOKEN_SHAPE.fullmatch(secret):
        try:
            account = await authenticate_credentials(request, user, secret)
            return Session(account.sid, "token", secret)
        except ApiError as exc:
            if "@" not in user or exc.http_status != 401:
                raise
    account = await authenticate_password(request, user, secret)
    return _password_session(account)


def _password_session(account: Account) -> Session:
    return Session(account.sid, "password", account.password_hash or "")


@page
async def sign_out(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS_KEY].close(request.cookies.get(COOKIE))
    response = see_other("/console/signin")
    clear_cookie(response, COOKIE)
    return response
