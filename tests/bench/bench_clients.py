"""The HTTP clients webhook_client_bench.py compares, each behind one small adapter.

Each adapter is configured as the daemon would use it: a pooled keep-alive client shared by every
request, HTTP/1.1, redirects followed (at most 5), gzip accepted, no cookie jar, connect / read /
total timeouts, and sends ``(method, url, headers, body)``; it returns the status, the media
type (lower case, no parameters) and the body (empty when ``discard``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from yarl import URL

Answer = tuple[int, str, bytes]


class Transport(Protocol):
    client: Any

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer: ...

    async def close(self) -> None: ...


def _media_type(value: str | bytes | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.partition(";")[0].strip().lower()


class HandWritten:
    def __init__(self, concurrency: int) -> None:
        from rcmlrouter.httpclient.client import HttpClient

        self.client = HttpClient(limit=concurrency)

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        answer = await self.client.request(
            method,
            URL(url, encoded=True),
            headers,
            body,
            connect=5.0,
            read=15.0,
            total=15.0,
            max_body=1 << 20,
            max_redirects=5,
            discard=discard,
        )
        return answer.status, answer.content_type, answer.body

    async def close(self) -> None:
        await self.client.close()


class AiohttpTuned:
    """aiohttp with everything a webhook does not need turned off: no cookie jar, no automatic
    Accept / Accept-Encoding headers, no env proxies, URLs passed pre-encoded, one session-wide
    timeout object, the DNS cache on, no closed-connection cleanup scan."""

    def __init__(self, concurrency: int) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=concurrency,
            limit_per_host=0,
            keepalive_timeout=4.0,
            ttl_dns_cache=60,
            enable_cleanup_closed=False,
        )
        self.client = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=15, sock_connect=5, sock_read=15),
            trust_env=False,
            raise_for_status=False,
        )

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        async with self.client.request(
            method, URL(url, encoded=True), data=body, headers=headers, max_redirects=6
        ) as response:
            content = await response.read()
            return response.status, response.content_type, b"" if discard else content

    async def close(self) -> None:
        await self.client.close()


class AiohttpBefore:
    """aiohttp as the daemon configured it before (its ``create_webhook_session``)."""

    def __init__(self, concurrency: int) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=4.0, ttl_dns_cache=60)
        self.client = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        self._timeout = aiohttp.ClientTimeout(total=15, sock_connect=5, sock_read=15)

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        async with self.client.request(
            method,
            URL(url, encoded=True),
            data=body,
            headers=headers,
            timeout=self._timeout,
            max_redirects=6,
        ) as response:
            content = await response.read()
            return response.status, response.content_type, b"" if discard else content

    async def close(self) -> None:
        await self.client.close()


class PyReqwest:
    def __init__(self, concurrency: int) -> None:
        from pyreqwest.client import ClientBuilder

        self.client = (
            ClientBuilder()
            .max_connections(concurrency)
            .pool_max_idle_per_host(concurrency)
            .pool_idle_timeout(timedelta(seconds=4))
            .follow_redirects(True)
            .max_redirects(5)
            .gzip(True)
            .connect_timeout(timedelta(seconds=5))
            .read_timeout(timedelta(seconds=15))
            .timeout(timedelta(seconds=15))
            .http1_only()
            .build()
        )

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        builder = self.client.request(method, url).headers(headers)
        if body is not None:
            builder = builder.body_bytes(body)
        response = await builder.build().send()
        content = await response.bytes()
        media = _media_type(response.get_header("content-type"))
        return response.status, media, b"" if discard else bytes(content)

    async def close(self) -> None:
        await self.client.close()


class Rnet:
    def __init__(self, concurrency: int) -> None:
        import rnet

        self.client = rnet.Client(
            allow_redirects=True,
            max_redirects=5,
            cookie_store=False,
            pool_max_size=concurrency,
            pool_max_idle_per_host=concurrency,
            pool_idle_timeout=4,
            connect_timeout=5,
            read_timeout=15,
            timeout=15,
            http1_only=True,
            gzip=True,
        )

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        import rnet

        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["body"] = body
        response = await self.client.request(getattr(rnet.Method, method), url, **kwargs)
        content = await response.bytes()
        media = _media_type(response.headers.get("content-type"))
        return response.status, media, b"" if discard else content

    async def close(self) -> None:
        pass


class Aiosonic:
    def __init__(self, concurrency: int) -> None:
        import aiosonic
        from aiosonic.pools import PoolConfig

        connector = aiosonic.TCPConnector(pool_configs={":default": PoolConfig(size=concurrency)})
        self.client = aiosonic.HTTPClient(connector=connector, follow=True, max_redirects=5)

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        response = await self.client.request(url, method, headers=headers, data=body)
        content = await response.content()
        media = _media_type(response.headers.get("content-type"))
        return response.status_code, media, b"" if discard else content

    async def close(self) -> None:
        await self.client.connector.cleanup()


class Niquests:
    def __init__(self, concurrency: int) -> None:
        import niquests

        self.client = niquests.AsyncSession(
            pool_maxsize=concurrency,
            disable_http2=True,
            disable_http3=True,
            allow_incoming_cookies=False,
            timeout=15,
        )

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        response = await self.client.request(method, url, headers=headers, data=body)
        content = response.content or b""
        media = _media_type(response.headers.get("content-type"))
        return int(response.status_code or 0), media, b"" if discard else content

    async def close(self) -> None:
        await self.client.close()


class CurlCffi:
    def __init__(self, concurrency: int) -> None:
        from curl_cffi.requests import AsyncSession

        self.client = AsyncSession(max_clients=concurrency, allow_redirects=True, max_redirects=5)

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, discard: bool
    ) -> Answer:
        response = await self.client.request(
            method, url, headers=headers, data=body, timeout=15, accept_encoding="gzip"
        )
        media = _media_type(response.headers.get("content-type"))
        return response.status_code, media, b"" if discard else response.content

    async def close(self) -> None:
        await self.client.close()


CANDIDATES: dict[str, Callable[[int], Transport]] = {
    "hand-written keep-alive client": HandWritten,
    "aiohttp tuned": AiohttpTuned,
    "aiohttp as configured before": AiohttpBefore,
    "pyreqwest": PyReqwest,
    "rnet": Rnet,
    "aiosonic": Aiosonic,
    "niquests": Niquests,
    "curl_cffi": CurlCffi,
}
