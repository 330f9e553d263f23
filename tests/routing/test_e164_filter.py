"""The E.164 pre-check must never hide a real hit (soundness against phonenumbers itself)."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from rcmlrouter.routing.e164_filter import E164TailIndex, filterable_digits, nsn_tail
from rcmlrouter.routing.numbers import to_e164

PNF = phonenumbers.PhoneNumberFormat
TYPES = [
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
]


def example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in TYPES:
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is not None:
                found.append((region, example))
    return found


def dialings(region: str, number: phonenumbers.PhoneNumber) -> list[tuple[str, str]]:
    """Ways to dial ``number``: (dialed digits, default region)."""
    e164 = phonenumbers.format_number(number, PNF.E164)
    national = phonenumbers.format_number(number, PNF.NATIONAL)
    national_digits = "".join(ch for ch in national if ch.isdigit())
    from_us = phonenumbers.format_out_of_country_calling_number(number, "US")
    from_us_digits = "".join(ch for ch in from_us if ch.isdigit() or ch == "+")
    return [
        (e164, "US"),
        (e164[1:], region),
        (national_digits, region),
        (from_us_digits, "US"),
        ("*" + national_digits, region),
    ]


def test_precheck_never_hides_an_e164_hit() -> None:
    checked = 0
    for region, number in example_numbers():
        e164 = phonenumbers.format_number(number, PNF.E164)
        index = E164TailIndex()
        index.add(e164)
        for dialed, default_region in dialings(region, number):
            if to_e164(dialed, default_region) != e164:
                continue
            checked += 1
            assert index.may_hit(dialed), (region, dialed, e164)
    assert checked > 600


def test_argentine_mobile_with_15_token() -> None:
    index = E164TailIndex()
    index.add("+5491123456789")
    dialed = "0111523456789"  # the national prefix rule drops "15" and inserts "9"
    assert to_e164(dialed, "AR") == "+5491123456789"
    assert index.may_hit(dialed)


def test_precheck_rejects_unrelated_long_numbers() -> None:
    rng = random.Random(7)
    index = E164TailIndex()
    keys = [f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}" for _ in range(1000)]
    for key in keys:
        index.add(key)
    misses = [str(rng.randrange(10**9, 10**10)) for _ in range(1000)]
    passed = sum(index.may_hit(d) for d in misses)
    assert passed < 10
    assert all(index.may_hit(key[2:]) for key in keys)


def test_index_counts_live_and_stale_keys() -> None:
    index = E164TailIndex()
    assert not index.may_hit("5105555555")
    index.add("+15105555555")
    index.add("+15105555556")
    index.discard("+15105555556")
    assert index.may_hit("5105555555")
    assert index.may_hit("5105555556")  # stale bit: a false positive, never a false negative
    assert (index.live, index.stale) == (1, 1)
    index.rebuild(["+15105555555"])
    assert not index.may_hit("5105555556")
    assert index.may_hit("15105555555")
    index.discard("+15105555555")
    assert not index.may_hit("5105555555")  # nothing live: phonenumbers is never needed


def test_needs_rebuild_after_many_removals() -> None:
    index = E164TailIndex()
    keys = [f"+1510555{n:04d}" for n in range(2000)]
    for key in keys:
        index.add(key)
    for key in keys[:1400]:
        index.discard(key)
    assert index.needs_rebuild()


@pytest.mark.parametrize(
    ("key", "tail"),
    [
        ("+15105555555", "05555555"),
        ("+442079460958", "79460958"),
        ("+5492221123456", "123456"),
        ("+6831234", "1234"),
        ("+1234", "234"),
        ("+99912", None),  # no such country code
        ("1234", None),
        ("+12a4", None),
        ("+1", None),
        ("mms:+1234", None),
    ],
)
def test_nsn_tail(key: str, tail: str | None) -> None:
    assert nsn_tail(key) == tail


@pytest.mark.parametrize(
    ("dialed", "digits"),
    [
        ("+15105555555", "15105555555"),
        ("*15105555555", "15105555555"),
        ("5105555555#1", None),
        ("1234567", None),
        ("alice12345678", None),
        ("１２３４５６７８９", None),
    ],
)
def test_filterable_digits(dialed: str, digits: str | None) -> None:
    assert filterable_digits(dialed) == digits
