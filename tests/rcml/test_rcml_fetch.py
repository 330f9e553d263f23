"""RcmlFetcher against a real aiohttp.web server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp import web
from webhook_server import AUTH_TOKEN, WebhookServer, twilio_signature

from rcmlrouter.errors import FetchError, RcmlError, RcmlParseError
from rcmlrouter.rcml.fetch import (
    FetchTimeouts,
    RcmlFetcher,
    WebhookTarget,
    webhook_failures,
)
from rcmlrouter.rcml.model import Document, Play, Redirect, Say
from rcmlrouter.rcml.signing import compute_signature

PARAMS = {"CallSid": "CA" + "0" * 32, "From": "+15105550001", "To": "+15105555555"}
PRIMARY = Document((Say("primary"),))
FALLBACK = Document((Say("fallback"),))


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/voice"


def test_server_side_validator_accepts_twilios_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


async def test_post_delivers_form_and_signs(server: WebhookServer, fetcher: RcmlFetcher) -> None:
    params = {**PARAMS, "SipHeader_X-Note": "héllo wörld & more=1"}
    fetched = await fetcher.fetch(server.url("/rcml?app=7"), "post", params, AUTH_TOKEN)
    assert fetched.document == PRIMARY
    assert fetched.status == 200
    assert fetched.url == server.url("/rcml?app=7")
    [request] = server.received("/rcml")
    assert request.method == "POST"
    assert request.form == params
    assert request.query == {"app": "7"}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"] == "rcmlrouter"
    assert request.signature_valid
    assert request.headers["X-Twilio-Signature"] == compute_signature(
        request.url, params, AUTH_TOKEN
    )


async def test_get_delivers_query_merged_and_signs(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    params = {**PARAMS, "Body": "a b/c+d"}
    fetched = await fetcher.fetch(server.url("/rcml?app=7"), "GET", params, AUTH_TOKEN)
    assert fetched.document == PRIMARY
    [request] = server.received("/rcml")
    assert request.method == "GET"
    assert request.query == {"app": "7", **params}
    assert request.form == {}
    assert request.signature_valid
    assert request.headers["X-Twilio-Signature"] == compute_signature(request.url, {}, AUTH_TOKEN)


async def test_wrong_token_is_detected_server_side(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    await fetcher.fetch(server.url("/rcml"), "POST", PARAMS, "another-token")
    assert not server.received("/rcml")[0].signature_valid


async def test_relative_urls_resolve_against_the_webhook(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    fetched = await fetcher.fetch(server.url("/relative/start"), "GET", PARAMS, AUTH_TOKEN)
    assert fetched.document.verbs == (
        Play(server.url("/audio/a.wav")),
        Redirect(server.url("/relative/next")),
    )


async def test_fragment_is_stripped_and_not_signed(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    fetched = await fetcher.fetch(server.url("/rcml#ct=1000&rt=2000"), "POST", PARAMS, AUTH_TOKEN)
    assert fetched.url == server.url("/rcml")
    [request] = server.received("/rcml")
    assert request.url == server.url("/rcml")
    assert request.signature_valid


async def test_five_redirects_are_followed(server: WebhookServer, fetcher: RcmlFetcher) -> None:
    fetched = await fetcher.fetch(server.url("/chain/5"), "GET", PARAMS, AUTH_TOKEN)
    assert fetched.document == PRIMARY
    assert server.hits["/chain/0"] == 1


async def test_sixth_redirect_fails(server: WebhookServer, fetcher: RcmlFetcher) -> None:
    with pytest.raises(FetchError, match="too many redirects") as caught:
        await fetcher.fetch(server.url("/chain/6"), "GET", PARAMS, AUTH_TOKEN)
    assert caught.value.error_code == 11206
    assert server.hits["/chain/0"] == 0


# (path or URL, error code, http_status, exception type)
FAILURES = [
    ("closed-port", 11205, None, FetchError),
    ("/slow#tt=200", 11205, None, FetchError),
    ("/slow#rt=200", 11205, None, FetchError),
    ("/status/404", 11200, 404, FetchError),
    ("/status/500", 11200, 500, FetchError),
    ("/text", 12300, None, FetchError),
    ("/no-type", 12300, None, FetchError),
    ("/badxml", 12100, None, RcmlParseError),
    ("/unknown-verb", 12100, None, RcmlParseError),
    ("/huge", 11206, None, FetchError),
    ("/huge-chunked", 11206, None, FetchError),
    ("/gzip-bomb", 11206, None, FetchError),
    ("/loop", 11206, None, FetchError),
]


def failing_url(server: WebhookServer, where: str) -> str:
    return closed_port_url() if where == "closed-port" else server.url(where)


@pytest.mark.parametrize(
    ("where", "code", "http_status", "kind"), FAILURES, ids=[row[0] for row in FAILURES]
)
async def test_failure_goes_to_fallback_with_error_code(
    server: WebhookServer,
    fetcher: RcmlFetcher,
    where: str,
    code: int,
    http_status: int | None,
    kind: type[RcmlError],
) -> None:
    primary_url = failing_url(server, where)
    started = time.monotonic()
    outcome = await fetcher.fetch_with_fallback(
        WebhookTarget(primary_url, "POST"),
        WebhookTarget(server.url("/fallback"), "POST"),
        PARAMS,
        AUTH_TOKEN,
    )
    assert time.monotonic() - started < 2.0
    assert outcome.document == FALLBACK
    assert outcome.used_fallback
    assert outcome.url == server.url("/fallback")
    [error] = outcome.errors
    assert type(error) is kind
    assert error.error_code == code
    assert getattr(error, "http_status", None) == http_status
    [request] = server.received("/fallback")
    error_url = primary_url.partition("#")[0]
    assert request.form == {**PARAMS, "ErrorCode": str(code), "ErrorUrl": error_url}
    assert request.signature_valid


@pytest.mark.parametrize(
    ("where", "code", "http_status", "kind"), FAILURES, ids=[row[0] for row in FAILURES]
)
async def test_failure_without_fallback_raises(
    server: WebhookServer,
    fetcher: RcmlFetcher,
    where: str,
    code: int,
    http_status: int | None,
    kind: type[RcmlError],
) -> None:
    primary_url = failing_url(server, where)
    with pytest.raises(RcmlError) as caught:
        await fetcher.fetch_with_fallback(
            WebhookTarget(primary_url, "GET"), None, PARAMS, AUTH_TOKEN
        )
    assert type(caught.value) is kind
    assert caught.value.error_code == code
    assert getattr(caught.value, "http_status", None) == http_status
    assert caught.value.url == primary_url.partition("#")[0]
    assert webhook_failures(caught.value) == (caught.value,)


async def test_primary_success_does_not_touch_fallback(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    outcome = await fetcher.fetch_with_fallback(
        WebhookTarget(server.url("/rcml")),
        WebhookTarget(server.url("/fallback")),
        PARAMS,
        AUTH_TOKEN,
    )
    assert (outcome.document, outcome.used_fallback, outcome.errors) == (PRIMARY, False, ())
    assert outcome.url == server.url("/rcml")
    assert server.hits["/fallback"] == 0


async def test_both_failing_raise_primary_with_fallback_as_cause(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch_with_fallback(
            WebhookTarget(server.url("/status/404")),
            WebhookTarget(server.url("/status/500"), "GET"),
            PARAMS,
            AUTH_TOKEN,
        )
    primary, fallback = webhook_failures(caught.value)
    assert primary is caught.value
    assert (primary.error_code, primary.http_status) == (11200, 404)
    assert isinstance(fallback, FetchError)
    assert (fallback.error_code, fallback.http_status) == (11200, 500)
    [request] = server.received("/status/500")
    assert request.query["ErrorCode"] == "11200"
    assert request.query["ErrorUrl"] == server.url("/status/404")


async def test_retries_a_503_twice_with_rc_2_rp_5xx(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(server.url("/status/503#rc=2&rp=5xx"), "POST", PARAMS, AUTH_TOKEN)
    assert caught.value.http_status == 503
    assert server.hits["/status/503"] == 3


async def test_retry_succeeds_on_third_attempt(server: WebhookServer, fetcher: RcmlFetcher) -> None:
    fetched = await fetcher.fetch(server.url("/flaky#rc=2&rp=all"), "GET", PARAMS, AUTH_TOKEN)
    assert fetched.document == PRIMARY
    assert server.hits["/flaky"] == 3


async def test_no_retry_when_policy_does_not_cover_the_failure(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    # rc without rp means rp=ct (Twilio's default): a 503 is not retried, nor is a 404 on 5xx.
    with pytest.raises(FetchError):
        await fetcher.fetch(server.url("/status/503#rc=3"), "POST", PARAMS, AUTH_TOKEN)
    with pytest.raises(FetchError):
        await fetcher.fetch(server.url("/status/404#rc=3&rp=5xx"), "POST", PARAMS, AUTH_TOKEN)
    assert server.hits["/status/503"] == 1
    assert server.hits["/status/404"] == 1


async def test_parse_errors_are_never_retried(server: WebhookServer, fetcher: RcmlFetcher) -> None:
    with pytest.raises(RcmlParseError):
        await fetcher.fetch(server.url("/badxml#rc=3&rp=all"), "POST", PARAMS, AUTH_TOKEN)
    assert server.hits["/badxml"] == 1


async def test_bad_method_and_scheme_are_fetch_errors(fetcher: RcmlFetcher) -> None:
    with pytest.raises(FetchError, match="invalid webhook method"):
        await fetcher.fetch("http://127.0.0.1:9/x", "PUT", PARAMS, AUTH_TOKEN)
    with pytest.raises(FetchError, match="must be http"):
        await fetcher.fetch("ftp://127.0.0.1/x", "GET", PARAMS, AUTH_TOKEN)


async def test_post_callback_returns_status_and_signs(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    params = {**PARAMS, "CallStatus": "ringing", "SequenceNumber": "0"}
    assert await fetcher.post_callback(server.url("/callback"), "POST", params, AUTH_TOKEN) == 204
    assert await fetcher.post_callback(server.url("/status/500"), "GET", params, AUTH_TOKEN) == 500
    assert await fetcher.post_callback(server.url("/huge"), "POST", params, AUTH_TOKEN) == 200
    [callback] = server.received("/callback")
    assert callback.form == params
    assert callback.signature_valid
    [status] = server.received("/status/500")
    assert status.query == params
    assert status.signature_valid


async def test_post_callback_connection_and_timeout_errors(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    with pytest.raises(FetchError) as refused:
        await fetcher.post_callback(closed_port_url(), "POST", PARAMS, AUTH_TOKEN)
    assert refused.value.error_code == 11205
    quick = FetchTimeouts(connect=1.0, read=0.2, total=0.3)
    with pytest.raises(FetchError, match="timed out") as slow:
        await fetcher.post_callback(server.url("/slow"), "POST", PARAMS, AUTH_TOKEN, quick)
    assert slow.value.error_code == 11205


async def test_connections_are_reused(server: WebhookServer, fetcher: RcmlFetcher) -> None:
    for _ in range(20):
        await fetcher.fetch(server.url("/rcml"), "POST", PARAMS, AUTH_TOKEN)
    assert len(server.received("/rcml")) == 20
    assert len(server.peers) == 1


class DroppingServer:
    """A raw HTTP server that drops its first N connections unanswered (stale keep-alive)."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/voice"

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        if self.connections > self.drops:
            body = b"<Response><Say>primary</Say></Response>"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
        writer.close()


async def test_post_on_a_dropped_connection_is_retried_once(fetcher: RcmlFetcher) -> None:
    dropping = DroppingServer(drops=1)
    async with dropping as url:
        fetched = await fetcher.fetch(url, "POST", PARAMS, AUTH_TOKEN)
    assert fetched.document == PRIMARY
    assert dropping.connections == 2


async def test_connection_dropped_twice_is_a_protocol_error(fetcher: RcmlFetcher) -> None:
    dropping = DroppingServer(drops=5)
    async with dropping as url:
        with pytest.raises(FetchError, match="closed the connection") as caught:
            await fetcher.fetch(url, "POST", PARAMS, AUTH_TOKEN)
    assert caught.value.error_code == 11206
    assert dropping.connections == 2


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=30,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_untrusted_certificate_is_a_tls_failure(
    self_signed: ssl.SSLContext, fetcher: RcmlFetcher
) -> None:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=b"<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_post("/voice", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed).start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(FetchError, match="TLS") as caught:
            await fetcher.fetch(f"https://127.0.0.1:{port}/voice", "POST", PARAMS, AUTH_TOKEN)
    finally:
        await runner.cleanup()
    assert caught.value.error_code == 11206


async def test_tls_to_a_plain_http_server_is_a_tls_failure(
    server: WebhookServer, fetcher: RcmlFetcher
) -> None:
    url = server.url("/rcml").replace("http://", "https://")
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(url, "POST", PARAMS, AUTH_TOKEN)
    assert caught.value.error_code == 11206
