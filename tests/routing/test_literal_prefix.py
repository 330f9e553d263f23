"""Literal prefixes of routing patterns: exact keys for tricky syntax, and soundness at random."""

from __future__ import annotations

import random

import pytest
import re2

from rcmlrouter.errors import InvalidPatternError
from rcmlrouter.routing.literal_prefix import PrefixKey, literal_prefixes
from rcmlrouter.routing.numbers import compile_pattern


def keys(pattern: str) -> set[PrefixKey] | None:
    found = literal_prefixes(compile_pattern(pattern))
    return None if found is None else set(found)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("^(1|2)3", {(True, "13"), (True, "23")}),
        ("^1?23", {(True, "123"), (True, "23")}),
        ("^\\+1", {(True, "+1")}),
        ("^+1", {(True, "+1")}),  # compatibility escaping: a literal +
        ("^*77...33#$", {(True, "*77")}),
        ("^[12]2233#$", {(True, "12233#"), (True, "22233#")}),
        ("^1{3}", {(True, "111")}),
        ("^1{2,3}4", {(True, "114"), (True, "1114")}),
        ("^12|34", {(True, "12"), (False, "34")}),
        ("7777|8888", {(False, "7777"), (False, "8888")}),
        ("16508.*", {(False, "16508")}),
        ("+1512.*", {(False, "+1512")}),
        ("(*1|+2)", {(False, "*1"), (False, "+2")}),
        ("[45]234[23]", {(False, "4234"), (False, "5234")}),
        ("^9012[0-9]{7}$", {(True, "9012")}),  # long enough: the class is not expanded
        ("^1[0-9]5", {(True, f"1{d}5") for d in "0123456789"}),
        ("^(?:12|3)4", {(True, "124"), (True, "34")}),
        ("^1(2|3.)4", {(True, "12"), (True, "13")}),
        ("^(12.*)+3", {(True, "12")}),
        ("^(12)+3", {(True, "12")}),  # one copy is certain, the rest is not followed
        ("^12\\d", {(True, f"12{d}") for d in "0123456789"}),
        ("^12#\\$", {(True, "12#$")}),
        ("^1\\.2", {(True, "1.2")}),
        ("^[]1]2", {(True, "]2"), (True, "12")}),
        ("^1*2", None),  # stops at the unbounded 1*: nothing certain
        ("^1?", None),
        ("(?i)12", None),
        ("^12(?i)3", None),  # flags anywhere: not followed
        ("12|.3", None),
        (".*5$", None),
        ("^[^1]2", None),
        ("^[[:digit:]]2", None),
        ("^[\\+-9]1", None),  # a range from an escaped character
        ("^\\x31", None),
        ("^\\Q12\\E", None),
        ("$|12", None),
    ],
)
def test_literal_prefixes(pattern: str, expected: set[PrefixKey] | None) -> None:
    try:
        assert keys(pattern) == expected
    except InvalidPatternError:
        assert expected is None


def test_literals_are_truncated() -> None:
    found = keys("^" + "1" * 40)
    assert found == {(True, "1" * 16)}


def test_class_ranges_expand_and_large_ones_stop() -> None:
    assert keys("^[1-3]9") == {(True, "19"), (True, "29"), (True, "39")}
    assert keys("^[0-9a-z]9") is None


PARTS = [
    "1",
    "2",
    "12",
    "#",
    "\\*",
    "\\+",
    "+",
    "*",
    ".",
    "[12]",
    "[0-2]",
    "\\d",
    "?",
    "*",
    "+",
    "{2}",
    "{1,2}",
    "{0,}",
    "(1|2)",
    "(?:12|2)",
    "(1.|2)",
    "(1)?",
    "^",
    "$",
    "|",
    "(",
    ")",
]


def random_pattern(rng: random.Random) -> str | None:
    pattern = "".join(rng.choice(PARTS) for _ in range(rng.randint(1, 7)))
    try:
        return compile_pattern(pattern)
    except InvalidPatternError:
        return None


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice("1122#*+0") for _ in range(rng.randint(1, 9)))


def test_every_match_starts_with_a_key() -> None:
    rng = random.Random(7)
    checked = indexed = 0
    for _ in range(3000):
        translated = random_pattern(rng)
        if translated is None:
            continue
        found = literal_prefixes(translated)
        if found is None:
            continue
        indexed += 1
        compiled = re2.compile(translated)
        for _ in range(40):
            text = random_text(rng)
            if compiled.search(text) is None:
                continue
            checked += 1
            assert any(
                text.startswith(literal) if anchored else literal in text
                for anchored, literal in found
            ), (translated, text, found)
    assert indexed > 500
    assert checked > 2000
