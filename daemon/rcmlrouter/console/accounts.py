"""Accounts: the signed-in account and its sub-accounts (the API's ``Accounts`` list), a new
sub-account, suspend and reactivate, token rotation: all through ``api/accounts.py``, so the
API's rules hold (an account cannot change its own status, a closed one stays closed, a rotated
token keeps working for ``[api] token_grace``). A new AuthToken is shown once, on the answer
to the form, never in a URL.
"""

from __future__ import annotations

from aiohttp import web

from rcmlrouter.api.accounts import create_sub_account, update_account
from rcmlrouter.api.auth import account_in_reach
from rcmlrouter.api.context import store_of
from rcmlrouter.api.form import Params
from rcmlrouter.console.access import page
from rcmlrouter.console.templating import html
from rcmlrouter.console.visit import visit_of
from rcmlrouter.errors import ApiError
from rcmlrouter.store.records import Account

PAGE_SIZE = 200


async def _page(
    request: web.Request,
    *,
    error: ApiError | None = None,
    revealed: Account | None = None,
    done: str = "",
) -> web.Response:
    visit = visit_of(request)
    tree = await store_of(request).list_accounts(visit.viewer.sid, None, None, 0, PAGE_SIZE)
    return html(
        request,
        "accounts.html",
        status=error.http_status if error else 200,
        accounts=tree.items,
        total=tree.total,
        error=error,
        revealed=revealed,
        done=done,
    )


@page
async def accounts_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@page
async def create_account(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    try:
        created = await create_sub_account(request, visit.viewer, await Params.from_body(request))
    except ApiError as exc:
        return await _page(request, error=exc)
    return await _page(request, revealed=created, done=f"created {created.friendly_name}")


@page
async def change_account(request: web.Request) -> web.StreamResponse:
    visit, store = visit_of(request), store_of(request)
    params = await Params.from_body(request)
    try:
        account = await account_in_reach(store, visit.viewer, request.match_info["sid"])
        saved = await update_account(request, visit.viewer, account, params)
    except ApiError as exc:
        return await _page(request, error=exc)
    if params.has("AuthToken"):
        return await _page(request, revealed=saved, done=f"new AuthToken for {saved.sid}")
    return await _page(request, done=f"{saved.friendly_name} is {saved.status}")
