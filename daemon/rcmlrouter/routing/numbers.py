"""Phone numbers: dialed-string normalisation, E.164 and trunk formatting, SIP-number
classification (SPEC §1.3, §2.1, §2.2 step 1).

Pure functions over strings: no I/O. Regex SIP numbers are validated and translated to RE2 by
:func:`compile_pattern` (SPEC §2.3).
"""

from __future__ import annotations

import functools
import re
from typing import Literal
from urllib.parse import unquote

import phonenumbers
import re2

from rcmlrouter.errors import InvalidNumberError, InvalidPatternError

SipNumberKind = Literal["dial", "channel", "regex", "catchall"]

MAX_SIP_NUMBER_LENGTH = 256
REGEX_METACHARACTERS = frozenset("^$.|?*+()[]{}\\")

_DIAL_CHARACTERS = frozenset("0123456789+*#")
_VISUAL_SEPARATORS = re.compile(r"[-.\s()]")
_CHANNEL_URI = re.compile(r"[A-Za-z][A-Za-z0-9]*:\S.*", re.DOTALL)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_E164_CACHE_SIZE = 65_536
_BACKREFERENCE = re.compile(r"\\[1-9]")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
# Positions just after these (and the start) make a leading `*` or `+` a literal (SPEC §2.3).
_LITERAL_QUANTIFIER_CONTEXT = frozenset("^|(")
# Empty-width assertions depend only on the characters around a position: probe every context
# (start/end, word character, non-word character, newline) for an empty match.
_EMPTY_MATCH_PROBES = tuple(
    (before + after, len(before))
    for before in ("", "1", "+", "\n")
    for after in ("", "1", "+", "\n")
)


def normalize_dialed(user: str) -> str:
    """Normalise the user part of a SIP URI into the dialed string (SPEC §2.1).

    Drops user parameters after ``;`` (``;rn=``, ``;npdi``), percent-decodes, removes control
    characters and surrounding whitespace, and, for phone-like strings (only digits, ``+``, ``*``,
    ``#`` once the visual separators ``-``, ``.``, whitespace, ``(``, ``)`` are removed), drops the
    separators. Never raises; may return an empty string. Not idempotent on purpose (``%252B``
    decodes once), so apply it exactly once to a received user part.
    """
    without_params = user.split(";", 1)[0]
    decoded = unquote(without_params, errors="replace")
    cleaned = _CONTROL_CHARACTERS.sub("", decoded).strip()
    compact = _VISUAL_SEPARATORS.sub("", cleaned)
    if compact and is_dial_string(compact) and any(ch.isdigit() for ch in compact):
        return compact
    return cleaned


def is_dial_string(value: str) -> bool:
    """True when ``value`` is non-empty and only has digits, ``+``, ``*`` and ``#``."""
    return bool(value) and all(ch in _DIAL_CHARACTERS for ch in value)


NANP_REGIONS = frozenset({"US", "CA"})


def nanp_e164_candidate(number: str) -> str | None:
    """The only E.164 form a plain-digit North American dialed string can have, without
    phonenumbers: ``+1`` + 10 digits (``NXXNXXXXXX``, or ``1`` + those). None when the string
    cannot be a valid NANP number.

    Sound for lookups: whenever :func:`to_e164` (region US/CA) gives a number, this gives the
    same; when this gives a string that is not valid, no valid provisioned number equals it.
    Only for strings of digits that do not start with the ``011`` international prefix.
    """
    if len(number) == 10 and number[0] in "23456789":
        return "+1" + number
    if len(number) == 11 and number[0] == "1" and number[1] in "23456789":
        return "+" + number
    return None


def to_e164(number: str, default_region: str = "US") -> str | None:
    """The E.164 form of ``number`` (phonenumbers), or None when it is not a valid number.

    Results are memoised (bounded LRU) because phonenumbers costs tens of microseconds a call.
    """
    if not number or len(number) > MAX_SIP_NUMBER_LENGTH:
        return None
    return _cached_e164(number, default_region.upper())


@functools.lru_cache(maxsize=_E164_CACHE_SIZE)
def _cached_e164(number: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted


@functools.lru_cache(maxsize=65_536)
def format_for_trunk(number: str, number_format: str, region: str) -> str:
    """``number`` as an outbound trunk wants it (``[[trunks]] number_format``: ``e164``
    +14155550100, ``national`` 4155550100); short codes and extensions that are no phone number
    go as written. Cached: every ``<Dial><Number>`` and API call to a number asks (phonenumbers
    takes ~50 µs)."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    if number_format == "national":
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in national if ch.isdigit())
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted


def toggle_plus(dialed: str) -> str | None:
    """The dial string with its leading ``+`` removed or added; None for non-dial strings."""
    if not is_dial_string(dialed):
        return None
    if dialed.startswith("+"):
        return dialed[1:] or None
    return "+" + dialed


def exact_candidates(dialed: str, default_region: str = "US") -> list[str]:
    """The exact-match candidates of SPEC §2.2 step 1, in order, without duplicates.

    The dialed string, its E.164 form, then the dialed string with its leading ``+`` added or
    removed (the last only for dial strings). Empty strings are never candidates.
    """
    ordered = [dialed, to_e164(dialed, default_region), toggle_plus(dialed)]
    result: list[str] = []
    for candidate in ordered:
        if candidate and candidate not in result:
            result.append(candidate)
    return result


def classify_sip_number(value: str) -> SipNumberKind:
    """Classify a provisioned SIP number (SPEC §1.3).

    ``*`` alone is the catch-all; ``scheme:rest`` (scheme of letters/digits starting with a letter)
    is a channel URI; a string containing any of ``^$.|?*+()[]{}\\`` beyond a leading ``+`` or
    ``*`` is a regex; anything else is an exact dial string (digits, ``+``, ``*``, ``#``, or a SIP
    user name such as ``alice``).

    Raises InvalidNumberError for empty or whitespace-only strings, strings over 256 characters
    and strings containing control characters.
    """
    if not value or not value.strip():
        raise InvalidNumberError("SIP number is empty")
    if len(value) > MAX_SIP_NUMBER_LENGTH:
        raise InvalidNumberError(f"SIP number is longer than {MAX_SIP_NUMBER_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(value):
        raise InvalidNumberError("SIP number contains control characters")
    if value == "*":
        return "catchall"
    if _CHANNEL_URI.fullmatch(value):
        return "channel"
    body = value[1:] if value[0] in "+*" else value
    if any(ch in REGEX_METACHARACTERS for ch in body):
        return "regex"
    return "dial"


def compile_pattern(pattern: str) -> str:
    """Validate a regex SIP number (SPEC §2.3) and return the RE2 pattern that implements it.

    A ``*`` or ``+`` at the start of the pattern or right after ``^``, ``|`` or ``(`` is escaped
    (a literal, as in the seed's examples). The result is searched (unanchored) in the dialed
    string; anchors in the pattern restrict it.

    Raises InvalidPatternError (API code 21505) with a message for the operator when the pattern
    is empty, longer than 256 characters, uses backreferences or look-around, is not valid RE2
    syntax, or can match the empty string (use the catch-all ``*`` instead).
    """
    if not pattern:
        raise InvalidPatternError("regex number is empty")
    if len(pattern) > MAX_SIP_NUMBER_LENGTH:
        raise InvalidPatternError(f"regex number is longer than {MAX_SIP_NUMBER_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(pattern):
        raise InvalidPatternError("regex number contains control characters")
    if _BACKREFERENCE.search(pattern):
        raise InvalidPatternError("regex number uses a backreference (\\1 ... \\9): not supported")
    if _LOOKAROUND.search(pattern):
        raise InvalidPatternError(
            "regex number uses look-around ((?=, (?!, (?<=, (?<!): not supported"
        )
    translated = escape_leading_quantifiers(pattern)
    compiled = _compile_re2(translated)
    if _matches_empty_string(compiled):
        raise InvalidPatternError(
            f"regex number {pattern!r} matches the empty string and would capture every call;"
            " use the catch-all number '*' instead"
        )
    return translated


def escape_leading_quantifiers(pattern: str) -> str:
    """Escape a ``*`` or ``+`` at the start or right after an unescaped ``^``, ``|`` or ``(``.

    Backslash escapes and character classes are skipped, so ``\\|*`` and ``[(*]`` are unchanged.
    """
    out: list[str] = []
    literal_allowed = True  # at the start, or right after an unescaped ^ | (
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            step = 2
        elif char == "[":
            step = _class_end(pattern, index) - index
        else:
            step = 1
        if literal_allowed and char in "*+":
            out.append("\\" + char)
        else:
            out.append(pattern[index : index + step])
        literal_allowed = step == 1 and char in _LITERAL_QUANTIFIER_CONTEXT
        index += step
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Index just past the character class opening at ``start`` (end of string if unclosed)."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern):
        if pattern[index] == "\\":
            index += 2
            continue
        if pattern[index] == "]":
            return index + 1
        index += 1
    return len(pattern)


def re2_options() -> re2.Options:
    """RE2 options used for every routing pattern (quiet: errors are raised, not logged)."""
    options = re2.Options()
    options.log_errors = False
    return options


def _compile_re2(translated: str) -> re2._Regexp:
    try:
        return re2.compile(translated, re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidPatternError(f"regex number is not valid RE2 syntax: {detail}") from exc


def _matches_empty_string(compiled: re2._Regexp) -> bool:
    return any(
        compiled.fullmatch(text, position, position) is not None
        for text, position in _EMPTY_MATCH_PROBES
    )
