"""No 5xx when the console's forms and filters are fuzzed (hypothesis, bounded).

The console runs in a thread with its own event loop; hypothesis drives a synchronous browser
(cookies, CSRF token) against it. Every answer must be a page or a redirect below 500.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from console_harness import Console, start_console
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEXT = st.text(max_size=80) | st.sampled_from(["", " ", "*", ".*", "^1.*", "+1", "%00", "\\1"])
URLS = TEXT | st.sampled_from(["http://hooks.example/v", "/relative", "ftp://x", "http://[::1"])
METHODS = st.sampled_from(["GET", "POST", "get", "PUT", "", "\x00"])
DATES = TEXT | st.sampled_from(["2023-11-15", "2023-02-30", "9999-99-99"])
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Browser:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.http = httpx.Client(base_url=console.root, timeout=10, follow_redirects=False)
        page = self.http.get("/console/signin")
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        signed = self.http.post(
            "/console/signin",
            data={"csrf_token": token, "user": console.admin.sid, "secret": console.token},
        )
        assert signed.status_code == 303
        self.csrf = CSRF.search(self.http.get("/console/numbers/new").text).group(1)  # type: ignore[union-attr]

    def check(self, response: httpx.Response) -> None:
        assert response.status_code < 500, (response.request.url, response.text[:300])


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    ready: list[Console] = []
    stop = threading.Event()

    async def serve() -> None:
        async for console in start_console(tmp_path_factory.mktemp("fuzz")):
            ready.append(console)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    while not ready:
        assert thread.is_alive()
        threading.Event().wait(0.05)
    client = Browser(ready[0])
    yield client
    client.http.close()
    stop.set()
    thread.join(10)


@EXAMPLES
@given(
    phone=TEXT,
    is_sip=st.sampled_from(["true", "false", "yes", ""]),
    area=TEXT,
    name=TEXT,
    url=URLS,
    method=METHODS,
    fallback=URLS,
)
def test_number_forms(
    browser: Browser,
    phone: str,
    is_sip: str,
    area: str,
    name: str,
    url: str,
    method: str,
    fallback: str,
) -> None:
    form = {
        "csrf_token": browser.csrf,
        "PhoneNumber": phone,
        "isSIP": is_sip,
        "FriendlyName": name,
        "VoiceUrl": url,
        "VoiceMethod": method,
        "VoiceFallbackUrl": fallback,
    }
    if area:
        form["AreaCode"] = area
    created = browser.http.post("/console/numbers/new", data=form)
    browser.check(created)
    if created.status_code == 303:
        target = created.headers["Location"].split("?")[0]
        browser.check(browser.http.post(target, data={**form, "SmsMethod": method}))
        browser.check(browser.http.post(f"{target}/release", data={"csrf_token": browser.csrf}))
    browser.check(browser.http.get("/console/numbers/check", params={"PhoneNumber": phone}))


@EXAMPLES
@given(phone=TEXT, name=TEXT, kind=TEXT, page=TEXT, size=TEXT, area=TEXT, contains=TEXT)
def test_list_filters(
    browser: Browser,
    phone: str,
    name: str,
    kind: str,
    page: str,
    size: str,
    area: str,
    contains: str,
) -> None:
    params = {
        "PhoneNumber": phone,
        "FriendlyName": name,
        "Type": kind,
        "Page": page,
        "PageSize": size,
    }
    browser.check(browser.http.get("/console/numbers", params=params))
    browser.check(
        browser.http.get("/console/numbers/new", params={"AreaCode": area, "Contains": contains})
    )


@EXAMPLES
@given(to=TEXT, from_=TEXT, day=DATES, after=DATES, before=TEXT, dialed=TEXT, domain=TEXT)
def test_log_filters_and_explanations(
    browser: Browser,
    to: str,
    from_: str,
    day: str,
    after: str,
    before: str,
    dialed: str,
    domain: str,
) -> None:
    calls = {"To": to, "From": from_, "StartTime": day, "StartTime>": after, "Before": before}
    browser.check(browser.http.get("/console/calls", params=calls))
    messages = {"To": to, "DateSent": day, "DateSent<": after, "Before": before}
    browser.check(browser.http.get("/console/messages", params=messages))
    explain = {"dialed": dialed, "domain": domain, "caller_domain": to}
    browser.check(browser.http.get("/console/explain", params=explain))
    browser.check(browser.http.get("/console/calls/" + quote(dialed or "CA", safe="")))
    browser.check(browser.http.get("/console/numbers", params={"account": domain or "AC"}))


@EXAMPLES
@given(name=TEXT, email=TEXT, password=TEXT, status=TEXT, token=TEXT, user=TEXT, secret=TEXT)
def test_account_and_sign_in_forms(
    browser: Browser,
    name: str,
    email: str,
    password: str,
    status: str,
    token: str,
    user: str,
    secret: str,
) -> None:
    form = {
        "csrf_token": browser.csrf,
        "FriendlyName": name,
        "EmailAddress": email,
        "Password": password,
    }
    created = browser.http.post("/console/accounts", data=form)
    browser.check(created)
    sub = re.search(r'data-account="(AC\w+)"', created.text)
    if sub is not None:
        change = {"csrf_token": browser.csrf, "Status": status, "AuthToken": token}
        browser.check(browser.http.post(f"/console/accounts/{sub.group(1)}", data=change))
    with httpx.Client(base_url=browser.console.root, timeout=10) as stranger:
        page = stranger.get("/console/signin")
        csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        answer = stranger.post(
            "/console/signin", data={"csrf_token": csrf, "user": user, "secret": secret}
        )
        assert answer.status_code in (303, 401, 429), answer.text[:300]


def test_the_fuzzer_can_see_a_5xx(browser: Browser, tmp_path: Path) -> None:
    """The check above fails on a 5xx: an internal error page is a 500."""
    broken = httpx.Response(500, request=httpx.Request("GET", browser.console.root))
    with pytest.raises(AssertionError):
        browser.check(broken)
