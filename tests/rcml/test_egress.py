"""``[webhooks] deny_networks``: refused after DNS resolution, IP literals and redirects included.

Only loopback is ever connected to. A test whose URL names a non-loopback address (10.0.0.1,
169.254.169.254) runs with a client whose every connection attempt fails the test before a
socket is opened (``no_connect``), and a host name's addresses come from a fake resolver: the
refusal must come from the deny check, before any packet could leave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from aiohttp import web

from rcmlrouter.config import MULTI_TENANT_DENY
from rcmlrouter.errors import FetchError
from rcmlrouter.httpclient.addresses import AddressBook
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.httpclient.failures import EgressDeniedError
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher, WebhookTarget
from rcmlrouter.rcml.model import Document, Say

TOKEN = "f00dfacef00dfacef00dfacef00dface"
PARAMS = {"CallSid": "CA" + "0" * 32, "From": "+15105550001", "To": "+15105555555"}
RCML = b"<Response><Say>hello</Say></Response>"


class Server:
    """A loopback server on ``host`` that counts requests and answers RCML (or a redirect)."""

    def __init__(self, host: str, redirect_to: str = "") -> None:
        self.host = host
        self.redirect_to = redirect_to
        self.requests: list[dict[str, str]] = []
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> Server:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://{self.host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        self.requests.append({**request.query, **{k: str(v) for k, v in form.items()}})
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        return web.Response(body=RCML, content_type="text/xml")


class FakeResolver:
    """Maps test host names to fixed addresses (no DNS query)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"unknown test host {host}")
        return self.names[host]


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test at the client's last step before it opens a socket."""

    async def refuse(_self: HttpClient, *where: object) -> None:
        raise AssertionError(f"a connection was attempted: {where}")

    monkeypatch.setattr(HttpClient, "_open", refuse)


def _session(cidrs: tuple[str, ...], resolver: FakeResolver | None = None) -> HttpClient:
    return HttpClient(limit=4, deny=DenyList(parse_networks(cidrs)), lookup=resolver)


def _fetcher(session: HttpClient) -> RcmlFetcher:
    return RcmlFetcher(session, FetchTimeouts(connect=2.0, read=2.0, total=2.0))


@pytest.fixture
async def loopback_servers() -> AsyncIterator[SimpleNamespace]:
    """``denied`` on 127.0.0.2 (the tests deny 127.0.0.2/32), ``allowed`` on 127.0.0.1."""
    denied = await Server("127.0.0.2").start()
    allowed = await Server("127.0.0.1").start()
    yield SimpleNamespace(denied=denied, allowed=allowed)
    await denied.stop()
    await allowed.stop()


async def test_denied_primary_goes_to_the_fallback_with_11205(
    loopback_servers: SimpleNamespace,
) -> None:
    denied, allowed = loopback_servers.denied, loopback_servers.allowed
    async with _session(("127.0.0.2/32",)) as session:
        outcome = await _fetcher(session).fetch_with_fallback(
            WebhookTarget(denied.base + "/voice"),
            WebhookTarget(allowed.base + "/fallback"),
            PARAMS,
            TOKEN,
        )
    assert denied.requests == []  # refused before any request reached it
    assert outcome.used_fallback and outcome.document == Document((Say("hello"),))
    [error] = outcome.errors
    assert error.error_code == 11205 and "deny_networks" in str(error)
    [request] = allowed.requests
    assert request["ErrorCode"] == "11205"
    assert request["ErrorUrl"] == denied.base + "/voice"


async def test_a_redirect_to_a_denied_address_is_refused(
    loopback_servers: SimpleNamespace,
) -> None:
    denied, allowed = loopback_servers.denied, loopback_servers.allowed
    allowed.redirect_to = denied.base + "/internal"
    async with _session(("127.0.0.2/32",)) as session:
        with pytest.raises(FetchError) as caught:
            await _fetcher(session).fetch(allowed.base + "/voice", "POST", PARAMS, TOKEN)
    assert caught.value.error_code == 11205
    assert len(allowed.requests) == 1 and denied.requests == []


@pytest.mark.usefixtures("no_connect")
async def test_a_name_resolving_to_a_denied_address_is_refused_without_connecting() -> None:
    resolver = FakeResolver({"intranet.test": ["10.0.0.1"]})
    async with _session(("10.0.0.0/8",), resolver) as session:
        with pytest.raises(FetchError) as caught:
            await _fetcher(session).fetch("http://intranet.test/voice", "GET", PARAMS, TOKEN)
    assert caught.value.error_code == 11205
    assert "intranet.test resolves only to denied addresses (10.0.0.1)" in str(caught.value)
    assert resolver.asked == ["intranet.test"]


async def test_a_redirect_to_a_name_resolving_to_a_denied_address_is_refused(
    loopback_servers: SimpleNamespace,
) -> None:
    allowed = loopback_servers.allowed
    allowed.redirect_to = "http://metadata.test/latest/meta-data/"
    resolver = FakeResolver({"metadata.test": ["169.254.169.254"]})
    async with _session(("10.0.0.0/8", "169.254.0.0/16"), resolver) as session:
        with pytest.raises(FetchError) as caught:
            await _fetcher(session).fetch(allowed.base + "/voice", "POST", PARAMS, TOKEN)
    assert caught.value.error_code == 11205
    assert resolver.asked == ["metadata.test"] and len(allowed.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/voice",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:192.168.1.1]/voice",
        "http://[::1]:9/voice",
        "http://0.0.0.0:9/voice",
    ],
)
@pytest.mark.usefixtures("no_connect")
async def test_multi_tenant_defaults_refuse_ip_literals_without_connecting(url: str) -> None:
    async with _session(MULTI_TENANT_DENY) as session:
        with pytest.raises(FetchError) as caught:
            await _fetcher(session).post_callback(url, "POST", PARAMS, TOKEN)
    assert caught.value.error_code == 11205 and "deny_networks" in str(caught.value)


async def test_only_the_allowed_addresses_of_a_name_are_used() -> None:
    inner = FakeResolver({"mixed.test": ["10.1.2.3", "127.0.0.1", "::ffff:10.9.9.9"]})
    book = AddressBook(DenyList(parse_networks(MULTI_TENANT_DENY[2:])), inner)
    assert await book.addresses("mixed.test", 80) == ["127.0.0.1"]
    with pytest.raises(EgressDeniedError):
        await AddressBook(DenyList(parse_networks(MULTI_TENANT_DENY)), inner).addresses(
            "mixed.test", 80
        )


async def test_an_allowed_loopback_webhook_works_with_a_deny_list(
    loopback_servers: SimpleNamespace,
) -> None:
    allowed = loopback_servers.allowed
    async with _session(("127.0.0.2/32", "10.0.0.0/8")) as session:
        fetched = await _fetcher(session).fetch(allowed.base + "/voice", "POST", PARAMS, TOKEN)
        status = await _fetcher(session).post_callback(
            "http://localhost:" + allowed.base.rsplit(":", 1)[1] + "/cb", "POST", PARAMS, TOKEN
        )
    assert fetched.document == Document((Say("hello"),)) and status == 200
    assert len(allowed.requests) == 2


def test_deny_list_matching() -> None:
    deny = DenyList(parse_networks(MULTI_TENANT_DENY))
    denied = "127.0.0.1 10.2.3.4 172.31.0.1 192.168.0.1 100.64.0.1 169.254.169.254 fe80::1%eth0"
    for host in [*denied.split(), "[fd12::1]", "::ffff:127.0.0.1", "0.0.0.0"]:
        assert deny.denies(host), host
    for host in ("8.8.8.8", "172.32.0.1", "2001:db8::1", "example.com", ""):
        assert not deny.denies(host), host
    assert not DenyList(())
    with pytest.raises(ValueError, match="not a network"):
        parse_networks(["10.0.0.0/33"])
