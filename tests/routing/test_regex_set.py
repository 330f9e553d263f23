"""OrgRegexSet (prefix index + buckets + result memo) against a linear scan in rank order."""

from __future__ import annotations

import random

import re2

from rcmlrouter.errors import InvalidPatternError
from rcmlrouter.routing.numbers import compile_pattern
from rcmlrouter.routing.regex_set import OrgRegexSet, RegexRoute

SHAPES = [
    "^{p}[0-9]*$",
    "{p}.*",
    "^\\+?{p}[0-9]{{2,}}",
    "^{p}",
    "{p}",
    "{p}#$",
    "^[12]{p}",
    "({p}|9{p})",
    "^{p}|{p}9",
    ".*{p}$",
    "[0-9]+{p}",
    "^*{p}",
]


def random_route(rng: random.Random, number: int) -> RegexRoute | None:
    literal = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
    pattern = rng.choice(SHAPES).format(p=literal)
    try:
        translated = compile_pattern(pattern)
    except InvalidPatternError:
        return None
    date = float(rng.randint(1, 3))
    return RegexRoute.create(f"PN{number:032x}", pattern, translated, date)


COMPILED: dict[str, re2._Regexp] = {}


def linear_best(ranked: list[RegexRoute], text: str) -> RegexRoute | None:
    for route in ranked:
        compiled = COMPILED.get(route.translated)
        if compiled is None:
            compiled = COMPILED[route.translated] = re2.compile(route.translated)
        if compiled.search(text) is not None:
            return route
    return None


def random_text(rng: random.Random, routes: dict[str, RegexRoute]) -> str:
    if routes and rng.random() < 0.6:
        route = rng.choice(sorted(routes.values()))
        digits = "".join(ch for ch in route.phone_number if ch.isdigit())
        text = rng.choice(["", "1", "+", "*", "9"]) + digits
        return text + "".join(rng.choice("0123456789#") for _ in range(rng.randint(0, 5)))
    return "".join(rng.choice("0123456789+*#") for _ in range(rng.randint(1, 15)))


def test_index_agrees_with_linear_scan() -> None:
    rng = random.Random(99)
    hits = 0
    for _round in range(4):
        matcher = OrgRegexSet()
        routes: dict[str, RegexRoute] = {}
        for step in range(300):
            if routes and rng.random() < 0.15:
                sid = rng.choice(sorted(routes))
                del routes[sid]
                assert matcher.discard(sid)
            else:
                route = random_route(rng, _round * 1000 + step)
                if route is None:
                    continue
                routes[route.sid] = route
                matcher.put(route)
            if step % 20:
                continue  # let changes pile up: one rebuild serves many of them
            ranked = sorted(routes.values())
            for _ in range(60):
                text = random_text(rng, routes)
                expected = linear_best(ranked, text)
                assert matcher.best_match(text) == expected, text
                assert matcher.best_match(text) == expected, text  # memoised answer
                hits += expected is not None
        assert len(matcher) == len(routes)
    assert hits > 300


def test_memo_is_cleared_by_changes() -> None:
    matcher = OrgRegexSet()
    short = RegexRoute.create("PN1", "55.*", compile_pattern("55.*"), 1.0)
    matcher.put(short)
    assert matcher.best_match("5551") == short
    longer = RegexRoute.create("PN2", "^555.*", compile_pattern("^555.*"), 2.0)
    matcher.put(longer)
    assert matcher.best_match("5551") == longer
    assert matcher.discard("PN2")
    assert matcher.best_match("5551") == short
    assert not matcher.discard("PN2")


def test_many_anchored_patterns_share_short_keys() -> None:
    matcher = OrgRegexSet()
    routes = [
        RegexRoute.create(f"PN{n}", f"^{n:07d}[0-9]*$", compile_pattern(f"^{n:07d}[0-9]*$"), 1.0)
        for n in range(0, 3000, 7)
    ]
    for route in routes:
        matcher.put(route)
    assert matcher.best_match("0000707123") == routes[101]
    assert matcher.best_match("0000708123") is None
    assert matcher.best_match("9" * 30) is None
