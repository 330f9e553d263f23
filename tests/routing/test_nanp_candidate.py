"""The phonenumbers-free E.164 candidate for NANP plain digits agrees with phonenumbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from rcmlrouter.routing.numbers import nanp_e164_candidate, to_e164
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot


def dialed_strings(count: int) -> list[str]:
    rng = random.Random(7)
    out = ["5105555555", "15105555555", "8005551212", "2125551234", "0123456789", "1123456789",
           "5551234", "90123456789", "415555123", "14155551234", "1415555123"]  # fmt: skip
    for region in ("US", "CA"):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                     phonenumbers.PhoneNumberType.TOLL_FREE):  # fmt: skip
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                national = str(example.national_number)
                out += [national, "1" + national]
    for _ in range(count):
        out.append("".join(rng.choice("0123456789") for _ in range(rng.choice((7, 10, 11, 12)))))
    return out


@pytest.mark.parametrize("region", ["US", "CA"])
def test_candidate_equals_phonenumbers_whenever_phonenumbers_answers(region: str) -> None:
    for dialed in dialed_strings(3000):
        expected = to_e164(dialed, region)
        if expected is not None:
            assert nanp_e164_candidate(dialed) == expected, dialed


def test_invalid_sip_number_is_not_reached_through_the_shortcut() -> None:
    # "+15550000000" is not a valid number: phonenumbers gives dialed 5550000000 no E.164 form,
    # so a SIP number spelled that way must not match it (SPEC §2.2 step 1).
    snapshot = RoutingSnapshot([RouteEntry("PN1", "OR1", "+15550000000", True, 0.0)])
    assert to_e164("5550000000") is None
    assert snapshot.resolve("5550000000", "OR1", None) is None
    valid = RoutingSnapshot([RouteEntry("PN2", "OR1", "+15105555555", True, 0.0)])
    match = valid.resolve("5105555555", "OR1", None)
    assert match is not None and match.sid == "PN2" and match.phone_number == "+15105555555"


def test_provider_number_found_from_national_digits_without_phonenumbers() -> None:
    snapshot = RoutingSnapshot([RouteEntry("PN3", "OR9", "+15105555555", False, 0.0)])
    for dialed in ("5105555555", "15105555555"):
        match = snapshot.resolve(dialed, "OR1", None)
        assert match is not None and match.sid == "PN3" and match.kind == "exact"
    # an international (011) prefix still goes through phonenumbers
    assert to_e164("01144 20 7946 0958".replace(" ", "")) == "+442079460958"
