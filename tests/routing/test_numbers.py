"""Normalisation, E.164 candidates and SIP-number classification (SPEC §1.3, §2.1, §2.2)."""

from __future__ import annotations

import pytest

from rcmlrouter.errors import InvalidNumberError, InvalidPatternError
from rcmlrouter.routing.numbers import (
    classify_sip_number,
    exact_candidates,
    is_dial_string,
    normalize_dialed,
    to_e164,
    toggle_plus,
)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("+15105555555", "+15105555555"),
        ("%2B15105555555", "+15105555555"),
        ("%2b15105555555", "+15105555555"),
        ("15105555555;rn=+15105550000;npdi", "15105555555"),
        ("5105555555;npdi", "5105555555"),
        ("(510) 555-5555", "5105555555"),
        ("+1.510.555.5555", "+15105555555"),
        ("+1%20510%20555%205555", "+15105555555"),
        ("*77-111-33#", "*7711133#"),
        ("alice", "alice"),
        ("alice.smith", "alice.smith"),
        ("mms:+12345678", "mms:+12345678"),
        ("  1234  ", "1234"),
        ("12%0034", "1234"),
        ("", ""),
        (";rn=1", ""),
        ("%", "%"),
        ("%zz", "%zz"),
        ("---", "---"),
    ],
)
def test_normalize_dialed(user: str, expected: str) -> None:
    assert normalize_dialed(user) == expected


def test_normalize_dialed_splits_params_before_decoding() -> None:
    # An escaped semicolon is data, not the start of a user parameter.
    assert normalize_dialed("abc%3Bdef") == "abc;def"


def test_normalize_dialed_never_raises_on_garbage() -> None:
    for garbage in ["\x00\x01", "%ff%fe", "\udcff", "(((", "+" * 1000, "%" * 10]:
        assert isinstance(normalize_dialed(garbage), str)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("123", True), ("+1*2#3", True), ("", False), ("12a", False), ("1 2", False)],
)
def test_is_dial_string(value: str, expected: bool) -> None:
    assert is_dial_string(value) is expected


@pytest.mark.parametrize(
    ("number", "region", "expected"),
    [
        ("5105555555", "US", "+15105555555"),
        ("15105555555", "US", "+15105555555"),
        ("+15105555555", "US", "+15105555555"),
        ("01144 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("1234", "US", None),
        ("+1234", "US", None),
        ("alice", "US", None),
        ("", "US", None),
        ("1" * 300, "US", None),
    ],
)
def test_to_e164(number: str, region: str, expected: str | None) -> None:
    assert to_e164(number, region) == expected


@pytest.mark.parametrize(
    ("dialed", "expected"),
    [
        ("5105555555", ["5105555555", "+15105555555", "+5105555555"]),
        ("+15105555555", ["+15105555555", "15105555555"]),
        ("15105555555", ["15105555555", "+15105555555"]),
        ("+1234", ["+1234", "1234"]),
        ("1234", ["1234", "+1234"]),
        ("alice", ["alice"]),
        ("mms:+12345678", ["mms:+12345678"]),
        ("+", ["+"]),
        ("", []),
    ],
)
def test_exact_candidates_order_and_dedup(dialed: str, expected: list[str]) -> None:
    assert exact_candidates(dialed, "US") == expected


def test_toggle_plus() -> None:
    assert toggle_plus("+12") == "12"
    assert toggle_plus("12") == "+12"
    assert toggle_plus("+") is None
    assert toggle_plus("alice") is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("*", "catchall"),
        ("1234", "dial"),
        ("+15105555555", "dial"),
        ("*77#", "dial"),
        ("+1234", "dial"),
        ("alice", "dial"),
        ("mms:+12345678", "channel"),
        ("sms:alice", "channel"),
        ("16.*", "regex"),
        ("7777|8888", "regex"),
        ("^*77...33#$", "regex"),
        ("+1512.*", "regex"),
        ("[45]234[23]", "regex"),
        ("999...", "regex"),
        ("*77*", "regex"),
        ("1+", "regex"),
        ("**", "regex"),
        ("12\\d", "regex"),
    ],
)
def test_classify_sip_number(value: str, kind: str) -> None:
    assert classify_sip_number(value) == kind


@pytest.mark.parametrize("value", ["", "   ", "\t", "1" * 257, "12\x0034", "12\n", "\x7f"])
def test_classify_sip_number_rejects(value: str) -> None:
    with pytest.raises(InvalidNumberError) as info:
        classify_sip_number(value)
    assert not isinstance(info.value, InvalidPatternError)


def test_classify_accepts_256_characters() -> None:
    assert classify_sip_number("1" * 256) == "dial"
