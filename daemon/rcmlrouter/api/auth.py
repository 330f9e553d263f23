"""HTTP Basic authentication and the account-tree access rule (SPEC §1.1)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rcmlrouter.api.auth_guard import AUTH_FAILURES_KEY, source_of
from rcmlrouter.api.context import accounts_of, store_of
from rcmlrouter.api.render import strip_format
from rcmlrouter.errors import ApiError, NotFoundError
from rcmlrouter.store.base import Store
from rcmlrouter.store.ids import hash_password, verify_password
from rcmlrouter.store.records import Account

AUTH_FAILED = ApiError(
    401, 20003, "Authentication failed: send AccountSid (or email) and AuthToken"
)


def _credentials(request: web.Request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AUTH_FAILED
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AUTH_FAILED from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise AUTH_FAILED
    return user, password


async def authenticate(request: web.Request) -> Account:
    """The account whose AccountSid (or email) and AuthToken are in the request; else 401.

    An address with too many recent failures gets 429 before its credentials are looked at.
    """
    user, token = _credentials(request)
    return await authenticate_credentials(request, user, token)


async def authenticate_credentials(request: web.Request, user: str, token: str) -> Account:
    """The account of AccountSid (or email) ``user`` if ``token`` is its AuthToken (or one
    rotated out less than ``token_grace`` ago); else 401, counted against the address."""
    return await _guarded(request, lambda: _check_token(request, user, token))


async def authenticate_password(request: web.Request, email: str, password: str) -> Account:
    """The account with this email address and password (the console's sign-in; the API
    itself takes AuthTokens); else 401, counted against the address like a wrong token."""
    return await _guarded(request, lambda: _check_password(request, email, password))


async def _guarded(request: web.Request, check: Callable[[], Awaitable[Account]]) -> Account:
    guard = request.app.get(AUTH_FAILURES_KEY)
    if guard is None:
        return await check()
    source = source_of(request)
    guard.check(source)
    try:
        return await check()
    except ApiError as exc:
        if exc.http_status == 401:
            guard.failed(source)
        raise


async def _check_password(request: web.Request, email: str, password: str) -> Account:
    try:
        account = await store_of(request).get_account_by_email(email)
    except NotFoundError:
        account = None
    encoded = account.password_hash if account is not None else None
    # scrypt runs in a thread (tens of ms); an unknown email costs the same as a wrong password
    matches = await asyncio.to_thread(_verify_password, password, encoded)
    if account is None or not encoded or not matches or account.status != "active":
        raise AUTH_FAILED
    return account


async def _check_token(request: web.Request, user: str, token: str) -> Account:
    cache = accounts_of(request)
    account = cache.get(user)
    if account is None:
        store = store_of(request)
        try:
            if "@" in user:
                account = await store.get_account_by_email(user)
            else:
                account = await store.get_account(user)
        except NotFoundError as exc:
            raise AUTH_FAILED from exc
        cache.put(user, account)
    if account.status != "active" or not token:
        raise AUTH_FAILED
    if not _same(account.auth_token, token):
        # a rotated-out token still in its grace period (a store read: failures are rate-limited)
        retired = await store_of(request).retired_tokens(account.sid, time.time())
        if not any(_same(old, token) for old in retired):
            raise AUTH_FAILED
    return account


def _verify_password(password: str, encoded: str | None) -> bool:
    """scrypt (in a worker thread); without a hash, a dummy one costs the same time."""
    return verify_password(password, encoded or _dummy_hash()) and encoded is not None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


async def controls(store: Store, caller: Account, target_sid: str) -> bool:
    """True when ``caller`` is ``target_sid`` or one of its ancestors."""
    if caller.sid == target_sid:
        return True
    return caller.sid in await store.account_lineage(target_sid)


async def authorize(request: web.Request) -> tuple[Account, Account]:
    """(caller, account of the URL): 401 unauthenticated, 404 unknown, 403 outside the tree."""
    caller = await authenticate(request)
    sid = strip_format(request.match_info["account_sid"])
    return caller, await account_in_reach(store_of(request), caller, sid)


async def account_in_reach(store: Store, caller: Account, sid: str) -> Account:
    """The account ``sid`` if ``caller`` may act on it (itself or a descendant): else 404
    unknown, 403 outside the caller's tree."""
    if sid == caller.sid:
        return caller
    try:
        account = await store.get_account(sid)
    except NotFoundError as exc:
        raise ApiError(404, 20404, f"account {sid} not found") from exc
    if not await controls(store, caller, account.sid):
        raise ApiError(403, 20403, f"account {caller.sid} may not act on account {sid}")
    return account
