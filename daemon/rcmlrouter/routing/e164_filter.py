"""A cheap pre-check that says when the E.164 candidate of a dialed string cannot hit any key.

phonenumbers costs 10-100 µs a call, far above the routing budget. A valid E.164 result keeps the
subscriber digits of what was dialed: parsing only strips or prepends prefixes (international
prefix, country code, national prefix, carrier code, area code for local dialing). So the last
digits of its national significant number (NSN) are the last digits of the dialed string. The
snapshot indexes every ``+digits`` key by the tail of its NSN, and skips phonenumbers when the
dialed string's tail is not indexed.

The tail is 8 digits, 6 for Argentina (whose national-prefix rule removes the mobile token ``15``
between the area code and the subscriber number), or the whole NSN when it is shorter. The
pre-check is only used for dialed strings of at least 8 digits with no ``#`` (``#`` starts an
extension for phonenumbers) and nothing but digits, ``+`` and ``*``; anything else always
takes the (memoised) phonenumbers path. tests/routing/test_e164_filter.py checks the rule
against phonenumbers' example numbers of every region.
"""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers

_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_DEFAULT_TAIL = 8
_TAIL_BY_COUNTRY_CODE = {"54": 6}
MIN_FILTERED_DIGITS = _DEFAULT_TAIL


def nsn_tail(key: str) -> str | None:
    """The indexed tail of an E.164-looking key, or None if no valid E.164 result can equal it."""
    if len(key) < 3 or key[0] != "+" or not key[1:].isascii() or not key[1:].isdigit():
        return None
    digits = key[1:]
    for size in (1, 2, 3):
        code = digits[:size]
        if code in _COUNTRY_CODES:
            nsn = digits[size:]
            if not nsn:
                return None
            return nsn[-_TAIL_BY_COUNTRY_CODE.get(code, _DEFAULT_TAIL) :]
    return None


def filterable_digits(dialed: str) -> str | None:
    """The digits the pre-check may use, or None when phonenumbers must be asked."""
    if dialed.isascii() and dialed.isdigit():  # the common case, checked first
        return dialed if len(dialed) >= MIN_FILTERED_DIGITS else None
    if "#" in dialed or not dialed.isascii():
        return None
    digits = dialed.replace("+", "").replace("*", "")
    if len(digits) < MIN_FILTERED_DIGITS or not digits.isdigit():
        return None
    return digits


class E164TailIndex:
    """Bitmaps of the tails of every ``+digits`` key, one per tail length (12.5 MB for 8 digits).

    Removing a key does not clear its bit (another key may share the tail): a stale bit only
    sends a lookup down the slower phonenumbers path. :attr:`stale` counts removals so the owner
    can :meth:`rebuild` the bitmaps when many have piled up.
    """

    __slots__ = ("_bits", "live", "stale")

    def __init__(self) -> None:
        self._bits: dict[int, bytearray] = {}
        self.live = 0
        self.stale = 0

    def add(self, key: str) -> None:
        tail = nsn_tail(key)
        if tail is None:
            return
        bits = self._bits.get(len(tail))
        if bits is None:
            bits = self._bits[len(tail)] = bytearray(10 ** len(tail) // 8 + 1)
        value = int(tail)
        bits[value >> 3] |= 1 << (value & 7)
        self.live += 1

    def discard(self, key: str) -> None:
        if nsn_tail(key) is not None:
            self.live -= 1
            self.stale += 1

    def needs_rebuild(self) -> bool:
        return self.stale > 1000 + self.live // 4

    def rebuild(self, keys: Iterable[str]) -> None:
        self._bits.clear()
        self.live = self.stale = 0
        for key in keys:
            self.add(key)

    def may_hit(self, dialed: str) -> bool:
        """False only when the E.164 form of ``dialed`` cannot be an indexed key."""
        if not self.live:
            return False
        digits = filterable_digits(dialed)
        if digits is None:
            return True
        for length, bits in self._bits.items():
            value = int(digits[-length:])
            if bits[value >> 3] & (1 << (value & 7)):
                return True
        return False
