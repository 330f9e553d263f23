"""Regex SIP-number validation and the compatibility rule (SPEC §2.3)."""

from __future__ import annotations

import pytest
import re2

from rcmlrouter.errors import InvalidPatternError
from rcmlrouter.routing.numbers import compile_pattern, escape_leading_quantifiers


def found(pattern: str, text: str) -> bool:
    return re2.search(compile_pattern(pattern), text) is not None


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("16508.*", "16508251255"),
        ("16.*", "16508251255"),
        ("7777|8888", "7777"),
        ("7777|8888", "8888"),
        ("^*77...33#$", "*7711133#"),
        ("^[12]2233#$", "12233#"),
        ("^[12]2233#$", "22233#"),
        ("^7688[456]#$", "76885#"),
        ("[45]234[23]", "42342"),
        ("999...", "999123"),
        ("999...", "0099912345"),
        ("+1512.*", "+15121234567"),
        ("(*1|+2)", "*1"),
        ("(*1|+2)", "+2"),
    ],
)
def test_seed_patterns_match(pattern: str, text: str) -> None:
    assert found(pattern, text)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("^*77...33#$", "*771113#"),
        ("^*77...33#$", "1*7711133#"),
        ("^[12]2233#$", "32233#"),
        ("^7688[456]#$", "76887#"),
        ("[45]234[23]", "42344"),
        ("+1512.*", "15121234567"),
        ("999...", "99912"),
        ("16508.*", "1650"),
    ],
)
def test_patterns_do_not_match(pattern: str, text: str) -> None:
    assert not found(pattern, text)


@pytest.mark.parametrize(
    ("pattern", "translated"),
    [
        ("*77", "\\*77"),
        ("+1512.*", "\\+1512.*"),
        ("^*77...33#$", "^\\*77...33#$"),
        ("a|*b", "a|\\*b"),
        ("(+1|*2)", "(\\+1|\\*2)"),
        ("\\|*1", "\\|*1"),
        ("\\(+1", "\\(+1"),
        ("[(*]+1", "[(*]+1"),
        ("[]|]+1", "[]|]+1"),
        ("[^]|]+1", "[^]|]+1"),
        ("1+2*", "1+2*"),
        ("**1", "\\**1"),
    ],
)
def test_escape_leading_quantifiers(pattern: str, translated: str) -> None:
    assert escape_leading_quantifiers(pattern) == translated


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("1" * 250 + ".*" + "12345", "longer than 256"),
        (".*", "matches the empty string"),
        ("$", "matches the empty string"),
        ("^", "matches the empty string"),
        ("a?", "matches the empty string"),
        ("1*", "matches the empty string"),
        ("(1|)", "matches the empty string"),
        ("\\b", "matches the empty string"),
        ("x|\\B", "matches the empty string"),
        ("(1)\\1", "backreference"),
        ("(?=1)2", "look-around"),
        ("(?<!1)2", "look-around"),
        ("1[", "not valid RE2 syntax: missing ]"),
        ("1{1001}", "not valid RE2 syntax"),
        ("(12", "not valid RE2 syntax"),
        ("12\x00", "control characters"),
    ],
)
def test_pattern_errors(pattern: str, message: str) -> None:
    with pytest.raises(InvalidPatternError, match=message.replace("[", "\\[")):
        compile_pattern(pattern)


def test_pattern_of_256_characters_is_accepted() -> None:
    pattern = "1" * 254 + ".*"
    assert compile_pattern(pattern) == pattern


def test_compatibility_literal_star_not_empty_match() -> None:
    # '*' alone is the catch-all number, never a pattern; as a pattern it is a literal star.
    assert compile_pattern("*") == "\\*"
