"""Issue 11, API: repeated authentication failures → 429 + Retry-After; AuthToken rotation
with a grace period; a closed account's numbers released; the call path told of account
changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_harness import PUBLIC_BASE, Api, start_api

from rcmlrouter.api.auth_guard import AuthFailures, TooManyFailuresError
from rcmlrouter.errors import NotFoundError

ACCOUNTS = "/restcomm/2012-04-24/Accounts"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Api]:
    async for value in start_api(
        tmp_path, public_base_url=PUBLIC_BASE, auth_fail_limit=3, auth_fail_window=1.0
    ):
        yield value


async def test_repeated_failures_get_429_with_retry_after(guarded: Api) -> None:
    api = guarded
    url = api.url("IncomingPhoneNumbers.json")
    for _ in range(3):
        assert (await api.client.get(url, auth=(api.admin.sid, "0" * 32))).status_code == 401
    for auth in ((api.admin.sid, "0" * 32), api.auth):  # right credentials too, until it ends
        resp = await api.client.get(url, auth=auth)
        assert resp.status_code == 429
        assert resp.json()["code"] == 20429 and resp.json()["status"] == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 1
    xml = await api.client.get(url.removesuffix(".json"), auth=api.auth)
    assert xml.status_code == 429 and "<Code>20429</Code>" in xml.text
    await asyncio.sleep(1.05)
    assert (await api.client.get(url, auth=api.auth)).status_code == 200


async def test_a_success_does_not_reset_the_counter(guarded: Api) -> None:
    api = guarded
    url = api.url("IncomingPhoneNumbers.json")
    for _ in range(2):
        await api.client.get(url, auth=(api.admin.sid, "0" * 32))
        assert (await api.client.get(url, auth=api.auth)).status_code == 200
    await api.client.get(url, auth=(api.admin.sid, "0" * 32))
    assert (await api.client.get(url, auth=api.auth)).status_code == 429


def test_failures_are_counted_per_address_in_bounded_memory() -> None:
    guard = AuthFailures(limit=2, window=60, max_sources=3)
    for source in ("a", "b", "c", "d"):
        guard.failed(source)
    assert len(guard) == 3  # "a" forgotten first
    guard.failed("b")
    with pytest.raises(TooManyFailuresError) as caught:
        guard.check("b")
    assert 59 <= caught.value.retry_after <= 60
    guard.check("c")  # one failure: still fine
    guard.check("a")


async def _rotate(api: Api, sid: str, auth: tuple[str, str], **extra: str) -> dict[str, str]:
    resp = await api.client.post(
        f"{api.root}{ACCOUNTS}/{sid}.json", data={"AuthToken": "rotate", **extra}, auth=auth
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_rotated_token_keeps_working_for_the_grace_period(api: Api) -> None:
    sub, old = await api.sub_account()
    body = await _rotate(api, sub, api.auth)  # the parent rotates its sub-account's token
    new = body["auth_token"]
    assert new != old and len(new) == 32
    url = f"{api.root}{ACCOUNTS}/{sub}.json"
    for token in (old, new):
        assert (await api.client.get(url, auth=(sub, token))).status_code == 200
    again = await _rotate(api, sub, (sub, old))  # an account may rotate its own
    for token in (old, new, again["auth_token"]):
        assert (await api.client.get(url, auth=(sub, token))).status_code == 200
    bad = await api.client.post(url, data={"AuthToken": "f" * 32}, auth=api.auth)
    assert bad.status_code == 400 and bad.json()["code"] == 20001


async def test_without_grace_the_old_token_is_refused_at_once(tmp_path: Path) -> None:
    async for api in start_api(tmp_path, token_grace=0.0):
        sub, old = await api.sub_account()
        new = (await _rotate(api, sub, (sub, old)))["auth_token"]
        url = f"{api.root}{ACCOUNTS}/{sub}.json"
        assert (await api.client.get(url, auth=(sub, old))).status_code == 401
        assert (await api.client.get(url, auth=(sub, new))).status_code == 200
        assert (await api.client.get(url, auth=(sub, new))).json()["auth_token"] == new


async def test_grace_ends(tmp_path: Path) -> None:
    async for api in start_api(tmp_path, token_grace=0.3):
        sub, old = await api.sub_account()
        await _rotate(api, sub, api.auth)
        url = f"{api.root}{ACCOUNTS}/{sub}.json"
        assert (await api.client.get(url, auth=(sub, old))).status_code == 200
        await asyncio.sleep(0.4)
        assert (await api.client.get(url, auth=(sub, old))).status_code == 401


async def test_closing_an_account_releases_its_numbers(tmp_path: Path) -> None:
    changed: list[str] = []
    async for api in start_api(tmp_path, on_account_change=changed.append):
        sub, token = await api.sub_account()
        numbers = f"{api.root}{ACCOUNTS}/{sub}/IncomingPhoneNumbers.json"
        bought = await api.client.post(
            numbers, data={"PhoneNumber": "+15105555555"}, auth=(sub, token)
        )
        assert bought.status_code == 200, bought.text
        sip = await api.client.post(
            numbers, data={"PhoneNumber": "7777", "isSIP": "true"}, auth=(sub, token)
        )
        assert sip.status_code == 200, sip.text
        suspended = await api.client.post(
            f"{api.root}{ACCOUNTS}/{sub}.json", data={"Status": "suspended"}, auth=api.auth
        )
        assert suspended.json()["status"] == "suspended"
        assert changed == [sub]
        assert await api.count(sub) == 2  # suspended: kept
        closed = await api.client.post(
            f"{api.root}{ACCOUNTS}/{sub}.json", data={"Status": "closed"}, auth=api.auth
        )
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert changed == [sub, sub]
        assert await api.count(sub) == 0
        with pytest.raises(NotFoundError):
            await api.store.get_number(bought.json()["sid"])
        # back in the inventory: the admin can buy it again
        again = await api.create(PhoneNumber="+15105555555")
        assert again.status_code == 200, again.text
