"""Who may open what: sign-in, sessions, CSRF, and one account's data kept from another."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from console_harness import Console, csrf_of, sign_in, start_console

SID = "PN" + "0" * 32
CALL = "CA" + "0" * 32
GET_PAGES = [
    "/console/numbers",
    "/console/numbers/new",
    "/console/numbers/check?PhoneNumber=1",
    f"/console/numbers/{SID}",
    f"/console/numbers/{SID}/release",
    "/console/explain?dialed=1",
    "/console/live",
    "/console/live/stream",
    "/console/calls",
    f"/console/calls/{CALL}",
    "/console/messages",
    "/console/health",
    "/console/health/stream",
    "/console/accounts",
]
POST_FORMS = [
    "/console/signout",
    "/console/numbers/new",
    f"/console/numbers/{SID}",
    f"/console/numbers/{SID}/release",
    f"/console/calls/{CALL}/control",
    "/console/accounts",
    "/console/accounts/AC" + "0" * 32,
]


def test_the_lists_cover_every_console_route(console: Console) -> None:
    """A new page must be added to these lists (and so to the tests below)."""
    routes = {
        (route.method, route.resource.canonical)
        for route in console.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/console/")
    }
    listed = {
        ("GET", p.split("?")[0].replace(SID, "{sid}").replace(CALL, "{sid}")) for p in GET_PAGES
    }
    listed |= {("POST", p.replace(SID, "{sid}").replace(CALL, "{sid}")) for p in POST_FORMS}
    listed = {(m, p.replace("AC" + "0" * 32, "{sid}")) for m, p in listed}
    public = {("GET", "/console/signin"), ("POST", "/console/signin"), ("GET", "/console/")}
    pages = {(m, p) for m, p in routes if m in ("GET", "POST") and "{tail" not in p}
    pages = {(m, p) for m, p in pages if not p.startswith("/console/static")}
    assert pages - public == listed


async def test_every_page_without_a_session_goes_to_sign_in(console: Console) -> None:
    async with console.client() as browser:
        for path in GET_PAGES:
            response = await browser.get(path)
            assert response.status_code == 303, path
            assert response.headers["Location"].startswith("/console/signin?next=%2Fconsole%2F")
        for path in POST_FORMS:
            response = await browser.post(path, data={"csrf_token": "x"})
            assert (response.status_code, response.headers["Location"]) == (
                303,
                "/console/signin?next=%2Fconsole%2F",
            ), path
        browser.cookies.set("rcmlrouter_console", "forged")
        assert (await browser.get("/console/numbers")).status_code == 303
        bounced = await browser.get("/console/signin?next=https://evil.example/")
        assert 'name="next" value="/console/"' in bounced.text  # no open redirect


async def test_a_form_without_its_csrf_token_gets_403(console: Console) -> None:
    async with console.client() as browser:
        assert (await sign_in(browser, console.admin.sid, console.token)).status_code == 303
        token = await csrf_of(browser, "/console/numbers/new")
        for path in POST_FORMS:
            missing = await browser.post(path, data={"FriendlyName": "x"})
            wrong = await browser.post(path, data={"csrf_token": token[:-2] + "xx"})
            assert (missing.status_code, wrong.status_code) == (403, 403), path
            assert "CSRF" in missing.text
        foreign = await browser.post(
            "/console/numbers/new",
            data={"csrf_token": token, "PhoneNumber": "4444", "isSIP": "true"},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        good = await browser.post(
            "/console/numbers/new",
            data={"csrf_token": token, "PhoneNumber": "4444", "isSIP": "true"},
        )
        assert good.status_code == 303  # the same form with its token works
    async with console.client() as other:  # the sign-in form: the double-submit cookie
        await other.get("/console/signin")
        refused = await other.post(
            "/console/signin",
            data={"csrf_token": "guess", "user": console.admin.sid, "secret": console.token},
        )
        assert refused.status_code == 403 and "rcmlrouter_console" not in refused.cookies


async def test_session_cookie_flags_and_sign_out(console: Console) -> None:
    async with console.client() as browser:
        signed = await sign_in(browser, console.admin.sid, console.token)
        cookie = next(
            c for c in signed.headers.get_list("set-cookie") if "rcmlrouter_console=" in c
        )
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
        assert "Secure" not in cookie  # plain http here; https adds it
        page = await browser.get("/console/numbers")
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        stolen = browser.cookies["rcmlrouter_console"]
        out = await browser.post(
            "/console/signout", data={"csrf_token": await csrf_of(browser, "/console/numbers")}
        )
        assert (out.status_code, out.headers["Location"]) == (303, "/console/signin")
    async with console.client() as replay:
        replay.cookies.set("rcmlrouter_console", stolen)
        assert (await replay.get("/console/numbers")).status_code == 303  # the session is gone


async def test_https_proxy_gets_a_secure_cookie(console: Console) -> None:
    async with console.client() as browser:
        token = await csrf_of(browser, "/console/signin")
        signed = await browser.post(
            "/console/signin",
            data={"csrf_token": token, "user": console.admin.sid, "secret": console.token},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "Secure" in signed.headers["set-cookie"]


async def test_email_and_password_sign_in_and_wrong_credentials(console: Console) -> None:
    sid, _ = await console.sub_account("carol", password="correct horse")
    async with console.client() as browser:
        wrong = await sign_in(browser, "carol@example.com", "wrong horse")
        assert wrong.status_code == 401 and "Sign-in failed" in wrong.text
        right = await sign_in(browser, "carol@example.com", "correct horse")
        assert right.status_code == 303
        page = await browser.get("/console/accounts")
        assert f'data-account="{sid}"' in page.text
        assert f'data-account="{console.admin.sid}"' not in page.text  # only its own tree


async def test_repeated_failures_get_429_as_the_api_does(tmp_path: Path) -> None:
    async for console in start_console(tmp_path, auth_fail_limit=3):
        async with console.client() as browser:
            codes = [
                (await sign_in(browser, console.admin.sid, "0" * 32)).status_code for _ in range(4)
            ]
            assert codes == [401, 401, 401, 429]
        async with httpx.AsyncClient(base_url=console.root) as api:  # one guard for both
            blocked = await api.get(
                f"/restcomm/2012-04-24/Accounts/{console.admin.sid}.json",
                auth=(console.admin.sid, console.token),
            )
            assert blocked.status_code == 429


async def test_a_rotated_token_past_its_grace_or_a_suspension_ends_the_session(
    tmp_path: Path,
) -> None:
    async for console in start_console(tmp_path, token_grace=0):
        sid, token = await console.sub_account("dave")
        async with console.client() as browser:
            await sign_in(browser, sid, token)
            assert (await browser.get("/console/numbers")).status_code == 200
            await console.api_post(f"Accounts/{sid}.json", (sid, token), AuthToken="rotate")
            assert (await browser.get("/console/numbers")).status_code == 303
        other, other_token = await console.sub_account("erin")
        async with console.client() as browser:
            await sign_in(browser, other, other_token)
            await console.api_post(
                f"Accounts/{other}.json", (console.admin.sid, console.token), Status="suspended"
            )
            assert (await browser.get("/console/numbers")).status_code == 303


async def test_a_sub_account_cannot_see_another_accounts_calls(console: Console) -> None:
    alice, alice_token = await console.sub_account("alice")
    bob, _ = await console.sub_account("bob")
    mine = await console.call(alice, "+15105550001")
    theirs = await console.call(bob, "+15105550002")
    live = await console.call(
        bob, "+15105550003", status="in-progress", end_time=None, duration=None
    )
    async with console.client() as browser:
        await sign_in(browser, alice, alice_token)
        log = await browser.get("/console/calls")
        assert mine.sid in log.text and theirs.sid not in log.text and live.sid not in log.text
        assert (await browser.get(f"/console/calls/{theirs.sid}")).status_code == 403
        assert (await browser.get(f"/console/calls?account={bob}")).status_code == 403
        assert (await browser.get(f"/console/live?account={bob}")).status_code == 403
        assert live.sid not in (await browser.get("/console/live")).text
        assert (await browser.get(f"/console/calls/{mine.sid}")).status_code == 200
    async with console.client() as admin:  # the parent sees its sub-accounts' calls
        await sign_in(admin, console.admin.sid, console.token)
        assert theirs.sid in (await admin.get(f"/console/calls?account={bob}")).text
        assert live.sid in (await admin.get("/console/live")).text


@pytest.mark.parametrize("path", ["/console/static/console.css", "/console/static/console.js"])
async def test_static_files_need_no_session(console: Console, path: str) -> None:
    async with console.client() as browser:
        assert (await browser.get(path)).status_code == 200
