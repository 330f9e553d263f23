from __future__ import annotations

import pytest

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.uri import parse_name_addr, parse_uri, parse_via


def test_sip_uri_with_user_password_port_params_headers() -> None:
    uri = parse_uri("sip:alice:secret@Example.COM:5070;transport=TCP;lr?subject=hi")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip",
        "alice",
        "secret",
        "example.com",
        5070,
    )
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.headers == "subject=hi"
    assert uri.transport == "tcp"


def test_percent_decoded_user_keeps_user_params() -> None:
    uri = parse_uri("sip:%2B1%20510;rn=+1999;npdi@example.com;user=phone")
    assert uri.user == "+1 510;rn=+1999;npdi"
    assert uri.params == {"user": "phone"}
    assert parse_uri(str(uri)).user == uri.user


def test_ipv6_host_and_sips_and_tel() -> None:
    uri = parse_uri("sips:bob@[2001:DB8::1]:5061")
    assert uri.host == "[2001:db8::1]" and uri.port == 5061 and uri.transport == "tls"
    assert str(uri) == "sips:bob@[2001:db8::1]:5061"
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert tel.user == "+1-201-555-0123" and tel.params["phone-context"] == "example.com"


@pytest.mark.parametrize(
    "text",
    [
        "http://example.com",
        "sip:",
        "sip:bob@",
        "sip:bob@example.com:0",
        "sip:bob@example.com:70000",
        "sip:bob@[::1",
        "sip:bob@exa mple.com",
        "sip:bob@host;bad param=1",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_name_addr_forms() -> None:
    quoted = parse_name_addr('"Bob \\"B\\" <x>" <sip:bob@h>;tag=abc;q=1')
    assert quoted.display == 'Bob "B" <x>' and quoted.tag == "abc"
    bare = parse_name_addr("sip:bob@h;tag=xyz")
    assert bare.tag == "xyz" and bare.uri.params == {}
    token = parse_name_addr("Bob  Smith <sip:bob@h>")
    assert token.display == "Bob Smith"
    assert parse_name_addr(str(quoted)).display == quoted.display


def test_via_parsing() -> None:
    via = parse_via("SIP / 2.0 / tcp [::1]:5062 ;branch=z9hG4bKx;rport;received=::1")
    assert (via.transport, via.host, via.port) == ("TCP", "[::1]", 5062)
    assert via.branch == "z9hG4bKx" and via.params["rport"] is None
    assert via.sent_by == "[::1]:5062"
    with pytest.raises(SipParseError):
        parse_via("SIP/3.0/UDP host")


@pytest.mark.parametrize(
    ("text", "display", "user", "host", "port", "uri_params", "params"),
    [
        ('"sipp" <sip:sipp@127.0.0.1:45123>;tag=1', "sipp", "sipp", "127.0.0.1", 45123, {},
         {"tag": "1"}),
        ("  Bob   Smith <sip:B@EXAMPLE.com;lr>", "Bob Smith", "B", "example.com", None,
         {"lr": None}, {}),
        ('"" <sips:h.example>; TAG = x ', None, None, "h.example", None, {}, {"tag": "x"}),
        ("<sip:%41@h:5>", None, "A", "h", 5, {}, {}),  # general path: percent-decoded user
        ('"a\\"b" <sip:u:pw@h>', 'a"b', "u", "h", None, {}, {}),  # general path: escapes
    ],
)  # fmt: skip
def test_name_addr_common_and_general_forms_agree(
    text: str,
    display: str | None,
    user: str | None,
    host: str,
    port: int | None,
    uri_params: dict[str, str | None],
    params: dict[str, str | None],
) -> None:
    parsed = parse_name_addr(text)
    assert (parsed.display, parsed.uri.user, parsed.uri.host, parsed.uri.port) == (
        display,
        user,
        host,
        port,
    )
    assert parsed.uri.params == uri_params
    assert parsed.params == params


@pytest.mark.parametrize("text", ["<sip:a@h:70000>", "<sip:a@h:0>", "<sip:a@h:>", '"x <sip:a@h>'])
def test_name_addr_fast_path_still_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text)
