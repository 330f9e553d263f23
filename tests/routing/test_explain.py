"""explain_route: the steps behind resolve()'s answer, and never a verdict of their own."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rcmlrouter.routing.explain import explain_route
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot

ORG_A = "OR" + "a" * 32
ORG_B = "OR" + "b" * 32
_sids = itertools.count(1)


def sip(number: str, org: str = ORG_A, date: float = 1000.0) -> RouteEntry:
    return RouteEntry(f"PN{next(_sids):032x}", org, number, True, date)


def provider(number: str) -> RouteEntry:
    return RouteEntry(f"PN{next(_sids):032x}", ORG_A, number, False, 1000.0)


def winners(explanation):  # type: ignore[no-untyped-def]
    return [step for step in explanation.steps if step.outcome == "winner"]


def test_exact_candidates_are_listed_in_order_until_the_first_hit() -> None:
    number = provider("+15105555555")
    snap = RoutingSnapshot([number, sip("5105555555")])
    explained = explain_route(snap, "5105555555", ORG_A, None)
    exact = [s for s in explained.steps if s.stage == "exact"]
    assert [s.subject for s in exact] == ["5105555555", "+15105555555", "+5105555555"]
    assert [s.outcome for s in exact] == ["winner", "not-tried", "not-tried"]
    assert explained.match is not None and explained.match.kind == "exact"
    snap.remove(exact[0].sid or "")
    again = explain_route(snap, "5105555555", ORG_A, None)
    outcomes = [s.outcome for s in again.steps if s.stage == "exact"]
    assert outcomes == ["miss", "winner", "not-tried"]
    assert winners(again)[0].sid == number.sid
    assert "E.164" in again.steps[1].text


def test_longest_pattern_wins_and_the_losers_say_why() -> None:
    short, longest, old, new = sip("16.*"), sip("16508.*"), sip("^165", date=1), sip("^166", date=2)
    snap = RoutingSnapshot([short, longest, old, new])
    explained = explain_route(snap, "16508251255", ORG_A, None)
    regex = [s for s in explained.steps if s.stage == "regex" and s.sid]
    assert [s.sid for s in regex] == [longest.sid, old.sid, short.sid]
    assert regex[0].outcome == "winner" and "longest" in regex[0].text
    assert "shorter" in regex[1].text
    tie = explain_route(RoutingSnapshot([new, old]), "x", ORG_A, None)
    assert tie.match is None  # letters: the regex step is skipped
    assert any("not made only of digits" in s.text for s in tie.steps)
    both = RoutingSnapshot([sip("^1[0-9]", date=5), sip("^1[0-8]", date=1)])
    ranked = [s for s in explain_route(both, "15", ORG_A, None).steps if s.sid]
    assert "created later" in ranked[1].text


def test_catch_all_and_the_caller_organization_rule() -> None:
    pattern, anything = sip("^9.*"), sip("*")
    snap = RoutingSnapshot([pattern, anything])
    foreign = explain_route(snap, "900", ORG_A, ORG_B)
    assert any("caller's organization" in s.text for s in foreign.steps)
    assert winners(foreign)[0].sid == anything.sid
    assert foreign.match is not None and foreign.match.kind == "catch-all"
    nothing = explain_route(RoutingSnapshot([pattern]), "800", ORG_A, None)
    assert nothing.match is None and winners(nothing) == []
    assert "404" in nothing.steps[-1].text


DIGITS = st.text(alphabet="0123456789+*#", min_size=1, max_size=8)
PATTERNS = st.sampled_from(["^1.*", "1[0-9]", "^+1.*", "5$", "9|8", "^*7", "[23]{2}", "0.0"])


@settings(max_examples=300, deadline=None)
@given(
    exact=st.lists(DIGITS, max_size=6),
    patterns=st.lists(st.tuples(PATTERNS, st.integers(0, 3)), max_size=6, unique_by=lambda p: p[0]),
    catchall=st.booleans(),
    dialed=DIGITS,
    foreign_caller=st.booleans(),
)
def test_the_winner_is_always_resolves_answer(
    exact: list[str],
    patterns: list[tuple[str, int]],
    catchall: bool,
    dialed: str,
    foreign_caller: bool,
) -> None:
    entries = [sip(n) for n in dict.fromkeys(exact)]
    entries += [sip(p, date=float(d)) for p, d in patterns]
    entries += [sip("*")] if catchall else []
    snap = RoutingSnapshot(entries)
    caller = ORG_B if foreign_caller else None
    explained = explain_route(snap, dialed, ORG_A, caller)
    assert explained.match == snap.resolve(dialed, ORG_A, caller, "US")
    won = winners(explained)
    if explained.match is None:
        assert won == []
    else:
        assert [(w.stage, w.sid) for w in won] == [(explained.match.kind, explained.match.sid)]
