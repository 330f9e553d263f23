"""What an SMS is (sms_format.py): segments as GSM-7 or UCS-2 would split the body, and the
address forms."""

from __future__ import annotations

import pytest

from rcmlrouter.sms_format import encoding_of, is_phone_number, num_segments


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [
        ("a", 1, "GSM-7"),
        ("", 1, "GSM-7"),
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("a" * 306, 2, "GSM-7"),
        ("a" * 307, 3, "GSM-7"),
        ("€" * 80, 1, "GSM-7"),  # extension table: two septets each
        ("€" * 81, 2, "GSM-7"),
        # 152 septets, then an escape sequence: it does not fit the part's 153rd septet and
        # moves whole to the next part (a plain ceil(306 / 153) would say 2)
        ("a" * 152 + "€" + "a" * 152, 3, "GSM-7"),
        ("a" * 153 + "€" + "a" * 151, 2, "GSM-7"),
        ("é" * 160, 1, "GSM-7"),  # in the basic table
        ("ç" * 70, 1, "UCS-2"),  # only Ç is GSM-7
        ("ç" * 71, 2, "UCS-2"),
        ("ç" * 134, 2, "UCS-2"),
        ("ç" * 135, 3, "UCS-2"),
        ("😀" * 35, 1, "UCS-2"),  # surrogate pairs: two UTF-16 units each
        ("😀" * 36, 2, "UCS-2"),
        # 66 units, then a pair that would straddle the 67-unit part: it starts the next one
        # (a plain ceil(134 / 67) would say 2)
        ("ç" * 66 + "😀" + "ç" * 66, 3, "UCS-2"),
        ("a" * 1600, 11, "GSM-7"),
    ],
)
def test_num_segments(body: str, segments: int, encoding: str) -> None:
    assert num_segments(body) == segments
    assert encoding_of(body) == encoding


@pytest.mark.parametrize("text", ["+15105555555", "5555", "*77#", "1-800-FLOWERS", "(510) 555"[:5]])
def test_phone_numbers(text: str) -> None:
    assert is_phone_number(text)


@pytest.mark.parametrize("text", ["", "sip:bob@host", "bob@host", "+1 510", "x" * 65, "12\n"])
def test_not_phone_numbers(text: str) -> None:
    assert not is_phone_number(text)
