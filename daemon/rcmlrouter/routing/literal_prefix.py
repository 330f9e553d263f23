"""Required literal starts of a routing pattern, for the prefix index of :mod:`regex_set`.

:func:`literal_prefixes` reads a translated pattern (the output of ``compile_pattern``) and
returns keys ``(anchored, literal)`` such that every match of the pattern in a text starts with
one of the literals: at position 0 when ``anchored`` (the alternative begins with ``^``), anywhere
otherwise. A text in which no key occurs cannot match, so the pattern need not be tried.

The reader is deliberately conservative: it understands literal characters, escaped punctuation
(``\\+``, ``\\*``, ``\\#``), ``\\d``, small character classes (``[12]``, ``[0-9]``), groups with
alternatives (``(1|2)``, ``(?:...)``), and the quantifiers ``? * + {n} {n,} {n,m}`` (lazy or not),
expanding at most :data:`MAX_LITERALS` strings of at most :data:`MAX_LITERAL_LENGTH` characters.
It stops at anything else (``.``, ``$``, ``(?i)``, ``\\b``, negated or POSIX classes...), keeping
what it has read so far, which is still a valid prefix. It returns None (the pattern is tried on
every lookup) when some top-level alternative has no usable literal, e.g. ``.*1``, ``(?i)12``,
``^1?``, or ``12|.3``.
"""

from __future__ import annotations

import re

MAX_LITERALS = 16
MAX_LITERAL_LENGTH = 16
# Alternatives are not expanded further once every literal has this many characters.
SELECTIVE_LENGTH = 4

PrefixKey = tuple[bool, str]  # (anchored at position 0, literal)

_FLAGS = re.compile(r"\(\?(?!:)")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_DIGITS = frozenset("0123456789")
_PUNCTUATION = frozenset(r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~""")
_Strings = frozenset[str]


class _Unsupported(Exception):
    """The pattern uses syntax the scanner does not follow (the caller gives up on it)."""


def literal_prefixes(translated: str) -> frozenset[PrefixKey] | None:
    """The ``(anchored, literal)`` keys one of which every match starts with, or None."""
    if "\\Q" in translated or _FLAGS.search(translated):
        return None  # quoted text changes how | ( ) [ are read; flags may fold case
    try:
        alternatives = _split_alternatives(translated)
    except _Unsupported:
        return None
    keys: set[PrefixKey] = set()
    for alternative in alternatives:
        anchored = alternative.startswith("^")
        try:
            strings, _complete = _sequence(alternative[1:] if anchored else alternative)
        except _Unsupported:
            return None
        if "" in strings:
            return None
        keys.update((anchored, literal) for literal in strings)
    return frozenset(keys)


def _split_alternatives(pattern: str) -> list[str]:
    """Split at the ``|`` that are outside groups, classes and escapes."""
    parts: list[str] = []
    depth = 0
    start = 0
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            index = _class_end(pattern, index)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _Unsupported
        elif char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    if depth != 0:
        raise _Unsupported
    parts.append(pattern[start:])
    return parts


def _class_end(pattern: str, start: int) -> int:
    """Index just past the class opening at ``start``; refuses nested ``[`` (POSIX classes)."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
        elif char == "[":
            raise _Unsupported
        elif char == "]":
            return index + 1
        else:
            index += 1
    raise _Unsupported


def _sequence(body: str) -> tuple[_Strings, bool]:
    """Literal starts of a sequence without top-level ``|``; True when they are its language."""
    result: _Strings = frozenset({""})
    index = 0
    while index < len(body):
        atom = _atom(body, index)
        if atom is None:
            return result, False
        strings, atom_complete, after_atom = atom
        if len(strings) > 1 and min(map(len, result)) >= SELECTIVE_LENGTH:
            return result, False  # long enough: more keys would only cost memory
        repeat = _quantifier(body, after_atom)
        if repeat is None:
            return result, False
        low, high, after = repeat
        if not atom_complete:
            # Only the start of the first copy is known, and only when there is one.
            if low == 0:
                return result, False
            low = high = 1
        repeated, repeat_complete = _repeat(strings, low, high)
        combined = _concat(result, repeated)
        if combined is None:
            return result, False
        result, fits = combined
        if not (repeat_complete and atom_complete and fits):
            return result, False
        index = after
    return result, True


def _atom(body: str, index: int) -> tuple[_Strings, bool, int] | None:
    """(strings, complete, next index) for the atom at ``index``; None where reading stops."""
    char = body[index]
    if char == "\\":
        escaped = body[index + 1 : index + 2]
        if escaped in _PUNCTUATION:
            return frozenset({escaped}), True, index + 2
        if escaped == "d":
            return _DIGITS, True, index + 2
        return None
    if char == "[":
        return _character_class(body, index)
    if char == "(":
        return _group(body, index)
    if char in ".^$|)*+?{":
        return None
    return frozenset({char}), True, index + 1


def _character_class(body: str, index: int) -> tuple[_Strings, bool, int] | None:
    end = _class_end(body, index)
    content = body[index + 1 : end - 1]
    if content.startswith("^"):
        return None
    chars: set[str] = set()
    position = 0
    while position < len(content):
        char = content[position]
        if char == "\\":
            escaped = content[position + 1 : position + 2]
            if escaped == "d":
                chars.update(_DIGITS)
            elif escaped in _PUNCTUATION:
                chars.add(escaped)
            else:
                return None
            position += 2
            if content[position : position + 1] == "-" and position + 1 < len(content):
                return None  # a range from an escaped character
            continue
        if content[position + 1 : position + 2] == "-" and position + 2 < len(content):
            last = content[position + 2]
            if last == "\\" or ord(last) < ord(char) or ord(last) - ord(char) >= MAX_LITERALS:
                return None
            chars.update(chr(code) for code in range(ord(char), ord(last) + 1))
            position += 3
            continue
        chars.add(char)
        position += 1
    if not chars or len(chars) > MAX_LITERALS:
        return None
    return frozenset(chars), True, end


def _group(body: str, index: int) -> tuple[_Strings, bool, int] | None:
    start = index + 1
    if body.startswith("?:", start):
        start += 2
    elif body.startswith("?", start):
        return None  # flags (?i) or named groups: stop
    end = _group_end(body, index)
    strings: set[str] = set()
    complete = True
    for alternative in _split_alternatives(body[start:end]):
        if alternative.startswith("^"):
            return None
        alt_strings, alt_complete = _sequence(alternative)
        strings.update(alt_strings)
        complete = complete and alt_complete
        if len(strings) > MAX_LITERALS:
            return None
    return frozenset(strings), complete, end + 1


def _group_end(body: str, index: int) -> int:
    """Index of the ``)`` closing the group opening at ``index``."""
    depth = 0
    position = index
    while position < len(body):
        char = body[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":
            position = _class_end(body, position)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    raise _Unsupported


def _quantifier(body: str, index: int) -> tuple[int, int | None, int] | None:
    """(min, max or None for unbounded, next index); (1, 1, index) when there is none.

    None for a quantifier followed by another one (not followed: RE2 refuses most of them).
    """
    char = body[index : index + 1]
    if char == "*":
        low, high, after = 0, None, index + 1
    elif char == "+":
        low, high, after = 1, None, index + 1
    elif char == "?":
        low, high, after = 0, 1, index + 1
    elif char == "{" and (repeat := _REPEAT.match(body, index)) is not None:
        low = int(repeat.group(1))
        high = low if repeat.group(2) is None else int(repeat.group(3)) if repeat.group(3) else None
        after = repeat.end()
    else:
        return 1, 1, index
    if body[after : after + 1] == "?":
        after += 1  # lazy: same language
    follower = body[after : after + 1]
    if follower and (follower in "*+?" or _REPEAT.match(body, after)):
        return None
    return low, high, after


def _repeat(strings: _Strings, low: int, high: int | None) -> tuple[_Strings, bool]:
    """Strings of ``low`` to ``high`` copies; incomplete (the mandatory part) when too many."""
    if "" in strings and (low, high) != (1, 1):
        return frozenset({""}), False
    low = min(low, MAX_LITERAL_LENGTH)
    mandatory: _Strings = frozenset({""})
    for _ in range(low):
        step = _concat(mandatory, strings)
        if step is None or not step[1]:
            return (mandatory if step is None else step[0]), False
        mandatory = step[0]
    if high is None or high - low > MAX_LITERAL_LENGTH:
        return mandatory, False
    result = set(mandatory)
    current = mandatory
    for _ in range(high - low):
        step = _concat(current, strings)
        if step is None or not step[1]:
            return mandatory, False
        current = step[0]
        result.update(current)
        if len(result) > MAX_LITERALS:
            return mandatory, False
    return frozenset(result), True


def _concat(left: _Strings, right: _Strings) -> tuple[_Strings, bool] | None:
    """Every ``l + r``, truncated to MAX_LITERAL_LENGTH (then False); None when too many."""
    if len(left) * len(right) > MAX_LITERALS:
        return None
    joined = {a + b for a in left for b in right}
    if any(len(s) > MAX_LITERAL_LENGTH for s in joined):
        return frozenset(s[:MAX_LITERAL_LENGTH] for s in joined), False
    return frozenset(joined), True
