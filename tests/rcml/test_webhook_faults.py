"""The webhook fetcher on the one HTTP client against raw-socket servers that answer the way real
ones sometimes do (issue 16 item 5). Each server writes exact bytes, segment by segment.

Both retry layers are checked together: the fetcher adds no retry of its own (without a
``#rc=`` policy), and the client sends a request again only when not one byte came back.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs

import pytest

from rcmlrouter.errors import FetchError
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher, WebhookTarget
from rcmlrouter.rcml.model import Document, Say
from support.rawhttp import RawServer, reset, send_segments

TOKEN = "f00dfacef00dfacef00dfacef00dface"
PARAMS = {"CallSid": "CA" + "0" * 32, "From": "+15105550001", "To": "+15105555555"}
RCML = b"<Response><Say>primary</Say></Response>"
PRIMARY = Document((Say("primary"),))
Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter


def ok(body: bytes = RCML, *, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n" + extra + b"Content-Length: %d\r\n\r\n"
        b"%s" % (len(body), body)
    )


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(limit=10) as http:
        yield http


@pytest.fixture
def fetcher(client: HttpClient) -> RcmlFetcher:
    return RcmlFetcher(client, FetchTimeouts(connect=2.0, read=2.0, total=3.0))


def serve(handler: Callable[[RawServer, Reader, Writer, int], Awaitable[None]]) -> RawServer:
    server: RawServer

    async def bound(reader: Reader, writer: Writer, n: int) -> None:
        await handler(server, reader, writer, n)

    server = RawServer(bound)
    return server


def answering(*segments_per_request: tuple[bytes, ...]) -> RawServer:
    """A keep-alive server answering its i-th request (over all connections) with segments[i]."""
    answered = 0

    async def handler(server: RawServer, reader: Reader, writer: Writer, _n: int) -> None:
        nonlocal answered
        while True:
            await server.read_request(reader)
            segments = segments_per_request[min(answered, len(segments_per_request) - 1)]
            answered += 1
            await send_segments(writer, *segments)

    return serve(handler)


@pytest.mark.parametrize(
    "interim",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"],
    ids=["100", "103"],
)
async def test_an_interim_response_in_its_own_segment_is_skipped(
    fetcher: RcmlFetcher, interim: bytes
) -> None:
    """RFC 9110 §15.2: 1xx then the final 200, each in its own segment, twice on one
    connection: both fetches get the document, and no stray response is left in the pool."""
    final = ok(RCML, extra=b"X-Final: yes\r\n")
    async with answering((interim, final)) as server:
        for _ in range(2):
            fetched = await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
            assert fetched.document == PRIMARY and fetched.status == 200
    assert server.connections == 1 and len(server.heads) == 2


async def test_interim_header_fields_do_not_reach_the_final_response(client: HttpClient) -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nContent-Type: text/xml\r\nLocation: /x\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with answering((interim, final)) as server:
        response = await client.request(
            "GET", server.url(), {}, None, connect=1, read=2, total=2, max_body=100,
            max_redirects=0,
        )  # fmt: skip
    assert (response.status, response.content_type, response.body) == (200, "", b"ok")
    assert response.header("Location") is None


@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
async def test_a_response_cut_short_is_never_sent_again(fetcher: RcmlFetcher, reused: bool) -> None:
    """Content-Length 400, 100 bytes, close: 11206, and the POST reached the server once."""
    cut = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 400\r\n\r\n" + b"x" * 100

    async def handler(server: RawServer, reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader)
        if reused and n == 1 and len(server.heads) == 1:
            writer.write(ok())  # a good answer first: the cut one then comes on a reused socket
            await writer.drain()
            await server.read_request(reader)
        writer.write(cut)
        await writer.drain()

    async with serve(handler) as server:
        if reused:
            await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(str(server.url("/cut")), "POST", PARAMS, TOKEN)
        await asyncio.sleep(0.2)  # a resend would arrive now
    assert caught.value.error_code == 11206
    assert [head.split(b" ")[1] for head in server.heads].count(b"/cut") == 1


async def test_a_cut_response_goes_to_the_fallback_and_the_primary_runs_once(
    fetcher: RcmlFetcher,
) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 400\r\n\r\n<Resp"
    fallback_rcml = b"<Response><Say>fallback</Say></Response>"

    async def handler(server: RawServer, reader: Reader, writer: Writer, _n: int) -> None:
        head = await server.read_request(reader)
        writer.write(ok(fallback_rcml) if b"/fallback" in head else cut)
        await writer.drain()

    async with serve(handler) as server:
        outcome = await fetcher.fetch_with_fallback(
            WebhookTarget(str(server.url("/voice"))),
            WebhookTarget(str(server.url("/fallback"))),
            PARAMS,
            TOKEN,
        )
    assert outcome.used_fallback and outcome.document == Document((Say("fallback"),))
    paths = [head.split(b" ")[1] for head in server.heads]
    assert paths == [b"/voice", b"/fallback"]
    assert parse_qs(server.bodies[1].decode())["ErrorCode"] == ["11206"]


async def test_a_callback_cut_short_is_sent_once(fetcher: RcmlFetcher) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n" + b"x" * 100

    async def handler(server: RawServer, reader: Reader, writer: Writer, _n: int) -> None:
        await server.read_request(reader)
        writer.write(cut)
        await writer.drain()

    async with serve(handler) as server:
        with pytest.raises(FetchError):
            await fetcher.post_callback(str(server.url("/status")), "POST", PARAMS, TOKEN)
        await asyncio.sleep(0.2)
    assert server.connections == 1 and len(server.heads) == 1


async def test_a_reset_of_a_stale_pooled_connection_is_retried_not_a_fallback(
    fetcher: RcmlFetcher,
) -> None:
    """The server resets the idle keep-alive connection as the next request arrives (no byte
    back): the request goes out once more on a new connection and succeeds."""

    async def handler(server: RawServer, reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader)
        writer.write(ok())
        await writer.drain()
        if n == 1:
            await server.read_request(reader)
            reset(writer)
            return
        while True:
            await server.read_request(reader)
            writer.write(ok())
            await writer.drain()

    async with serve(handler) as server:
        for _ in range(2):
            outcome = await fetcher.fetch_with_fallback(
                WebhookTarget(str(server.url())), None, PARAMS, TOKEN
            )
            assert not outcome.used_fallback and outcome.document == PRIMARY
    assert server.connections == 2 and len(server.heads) == 3


class LoopLag:
    """The longest gap between 5 ms ticks of the event loop while it runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.worst = max(self.worst, now - last)
            last = now

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_an_endless_header_is_cut_at_the_limit_without_blocking(
    fetcher: RcmlFetcher,
) -> None:
    """A 64 MiB header value: 11206 after about 64 KiB, the loop never blocked."""
    sent = 0

    async def handler(server: RawServer, reader: Reader, writer: Writer, _n: int) -> None:
        nonlocal sent
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nX-Huge: ")
        piece = b"a" * 65536
        for _ in range(1024):  # 64 MiB
            writer.write(piece)
            await writer.drain()
            sent += len(piece)

    async with serve(handler) as server, LoopLag() as lag:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
        elapsed = time.monotonic() - started
    assert caught.value.error_code == 11206 and "header" in str(caught.value)
    assert elapsed < 1.0 and lag.worst < 0.1, (elapsed, lag.worst)
    assert sent < 16 * 1024 * 1024  # the client closed long before the server was done


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ([b"X-Line: " + b"a" * 8100], False),
        ([b"X-Line: " + b"a" * 8200], True),
        ([b"X-F%d: " % i + b"a" * 1000 for i in range(60)], False),  # ~60 KiB
        ([b"X-F%d: " % i + b"a" * 1000 for i in range(70)], True),  # ~70 KiB
    ],
    ids=["8100-line", "8200-line", "60-KiB-head", "70-KiB-head"],
)
@pytest.mark.parametrize("segmented", [False, True], ids=["one-write", "byte-runs"])
async def test_header_size_limits(
    fetcher: RcmlFetcher, fields: list[bytes], refused: bool, segmented: bool
) -> None:
    extra = b"".join(field + b"\r\n" for field in fields)
    answer = ok(extra=extra)
    chunks = [answer[i : i + 1500] for i in range(0, len(answer), 1500)] if segmented else [answer]
    async with answering(tuple(chunks)) as server:
        if not refused:
            fetched = await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
            assert fetched.document == PRIMARY
            return
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
    assert caught.value.error_code == 11206


async def test_a_multi_member_gzip_body_is_decoded_whole(fetcher: RcmlFetcher) -> None:
    body = gzip.compress(RCML[:20]) + gzip.compress(RCML[20:])
    answer = ok(body, extra=b"Content-Encoding: gzip\r\n")
    async with answering((answer,)) as server:
        fetched = await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
    assert fetched.document == PRIMARY


async def test_a_raw_utf8_location_is_percent_encoded_once(fetcher: RcmlFetcher) -> None:
    redirect = (
        b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9?q=\xc3\xbc\r\nContent-Length: 0\r\n\r\n"
    )
    async with answering((redirect,), (ok(),)) as server:
        fetched = await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
    assert fetched.document == PRIMARY
    assert server.heads[1].startswith(b"GET /caf%C3%A9?q=%C3%BC HTTP/1.1\r\n")


async def test_an_encoded_location_stays_as_it_is(fetcher: RcmlFetcher) -> None:
    redirect = b"HTTP/1.1 303 See Other\r\nLocation: /caf%C3%A9\r\nContent-Length: 0\r\n\r\n"
    async with answering((redirect,), (ok(),)) as server:
        await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
    assert server.heads[1].startswith(b"GET /caf%C3%A9 HTTP/1.1\r\n")


async def test_trailer_fields_do_not_change_the_verdict(fetcher: RcmlFetcher) -> None:
    """A trailer ``Content-Type: text/html`` after a text/xml chunked body: still RCML."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: Content-Type\r\n\r\n"
        b"%x\r\n%s\r\n0\r\nContent-Type: text/html\r\n\r\n" % (len(RCML), RCML)
    )
    async with answering((answer,)) as server:
        fetched = await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
    assert fetched.document == PRIMARY


async def test_obs_fold_and_a_space_before_a_chunk_extension_are_accepted(
    fetcher: RcmlFetcher,
) -> None:
    """RFC 9112 §5.2 (obs-fold) and §7.1.1 (BWS before a chunk extension's ``;``)."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nX-Folded: one\r\n two\r\n\t three\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"%x ;name=value\r\n%s\r\n0\r\n\r\n" % (len(RCML), RCML)
    )
    async with answering((answer,)) as server:
        fetched = await fetcher.fetch(str(server.url()), "POST", PARAMS, TOKEN)
    assert fetched.document == PRIMARY
