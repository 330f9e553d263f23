"""Every 4xx of the API has an error code, also when aiohttp's HTTP parser refuses the request
before any handler runs (a request line or header over 8,190 bytes, a byte not allowed in a URL),
and a numeric parameter never turns into a 500 (``PageSize=²``)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from api_harness import Api, start_api

from rcmlrouter.api.protocol_errors import protocol_error


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for value in start_api(tmp_path):
        yield value


async def raw_exchange(api: Api, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """``request`` as bytes on a new connection: (status line, headers, body)."""
    host, port = api.root.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), 5)  # the daemon closes after an error
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def coded_xml(body: bytes) -> tuple[int, str]:
    root = ET.fromstring(body)
    assert root.tag == "RestcommResponse"
    return int(root.findtext("RestException/Code") or 0), root.findtext(
        "RestException/Message"
    ) or ""


def get(api: Api, target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: x", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("utf-8")


async def test_a_non_ascii_sid_and_a_long_junk_page_size_get_a_coded_400(api: Api) -> None:
    """The schemathesis finding: percent-encoded non-ASCII makes the request line longer than
    aiohttp reads (8,190 bytes); its plain-text 400 had no code."""
    path = api.url("Calls/" + quote("é" * 64) + "/Recordings.xml").removeprefix(api.root)
    target = f"{path}?PageSize={quote(chr(0x1F600) * 800)}"
    assert len(target) > 8190
    status, headers, body = await raw_exchange(api, get(api, target))
    assert status.split(" ")[1] == "400", status  # HTTP/1.0: the request line was never read
    assert headers["content-type"].startswith("application/xml")
    code, message = coded_xml(body)
    assert code == 20001 and message.startswith("malformed HTTP request: Got more than 8190 bytes")


@pytest.mark.parametrize(
    ("request_bytes", "detail"),
    [
        (
            b"GET /restcomm/2012-04-24/Accounts/AC\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
            "Invalid char",
        ),
        (b"GET /x?a=\x7f HTTP/1.1\r\nHost: x\r\n\r\n", "Invalid char"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", "Got more than"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", ""),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS to a plain port\r\n\r\n", ""),
    ],
)
async def test_requests_the_parser_refuses_get_a_coded_body(
    api: Api, request_bytes: bytes, detail: str
) -> None:
    status, _, body = await raw_exchange(api, request_bytes)
    assert status.split(" ")[1].startswith("4"), status
    code, message = coded_xml(body)
    assert code == 20001 and message.startswith("malformed HTTP request")
    assert detail in message


@pytest.mark.parametrize("value", ["²", "𝟙𝟚", "٣", "9" * 5000, "0" * 5000 + "7", " 12 ", "-1"])
@pytest.mark.parametrize("suffix", [".json", ".xml"])
async def test_page_size_is_ascii_digits_or_a_coded_400(api: Api, value: str, suffix: str) -> None:
    response = await api.client.get(
        api.url(f"Calls/CA0/Recordings{suffix}"), params={"PageSize": value}, auth=api.auth
    )
    if value.strip().lstrip("0") in ("7", "12"):  # leading zeros and spaces are fine
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    if suffix == ".json":
        assert response.json()["code"] == 20001
    else:
        assert coded_xml(response.content)[0] == 20001


async def test_contains_takes_ascii_digits_only(api: Api) -> None:
    response = await api.client.get(
        api.url("AvailablePhoneNumbers/US/Local.json"), params={"Contains": "5²"}, auth=api.auth
    )
    assert response.status_code == 400 and response.json()["code"] == 20001


def test_the_detail_leaves_out_the_echoed_bytes() -> None:
    error = protocol_error(400, "Invalid char in url path:\n\n  b'GET /\\xc3'\n   ^")
    assert (error.code, error.message) == (
        20001,
        "malformed HTTP request: Invalid char in url path",
    )
    assert protocol_error(500, "boom").code == 20500
    assert protocol_error(400, None).message == "malformed HTTP request"
