"""RoutingSnapshot against a slow, obviously-correct model of SPEC §2.2 on random tables."""

from __future__ import annotations

import random

import re2

from rcmlrouter.errors import InvalidPatternError
from rcmlrouter.routing.numbers import (
    classify_sip_number,
    compile_pattern,
    exact_candidates,
    is_dial_string,
)
from rcmlrouter.routing.table import RouteEntry, RouteMatch, RoutingSnapshot

ORGS = ["OR" + c * 32 for c in "abc"]
PATTERN_PARTS = ["1", "5", "55", "[15]", ".", "#", "^", "$", "12|55", "(1|5)"]


def random_pattern(rng: random.Random) -> str:
    while True:
        pattern = "".join(rng.choice(PATTERN_PARTS) for _ in range(rng.randint(1, 4)))
        if classify_sip_number(pattern) != "regex":
            continue
        try:
            compile_pattern(pattern)
        except InvalidPatternError:
            continue  # e.g. "^$" matches the empty string
        return pattern


def random_entry(rng: random.Random) -> RouteEntry:
    org = rng.choice(ORGS)
    sid = f"PN{rng.randrange(16**32):032x}"
    date = float(rng.randint(1, 5))
    roll = rng.random()
    if roll < 0.3:
        return RouteEntry(sid, org, f"+1510555{rng.randint(0, 99):04d}", False, date)
    if roll < 0.6:
        number = rng.choice(["", "+"]) + rng.choice(["1510555", "510555", "55"])
        return RouteEntry(sid, org, number + f"{rng.randint(0, 99):04d}", True, date)
    if roll < 0.95:
        return RouteEntry(sid, org, random_pattern(rng), True, date)
    return RouteEntry(sid, org, "*", True, date)


def model_resolve(
    entries: dict[str, RouteEntry], dialed: str, dest: str, caller: str | None
) -> RouteMatch | None:
    live = list(entries.values())
    for candidate in exact_candidates(dialed, "US"):
        for entry in live:
            if entry.phone_number == candidate and not entry.is_sip:
                return RouteMatch(entry.sid, "exact", candidate)
        for entry in live:
            if (
                entry.phone_number == candidate
                and entry.is_sip
                and entry.organization_sid == dest
                and classify_sip_number(candidate) in ("dial", "channel")
            ):
                return RouteMatch(entry.sid, "exact", candidate)
    org_entries = [e for e in live if e.is_sip and e.organization_sid == dest]
    if is_dial_string(dialed) and caller in (None, dest):
        patterns = [e for e in org_entries if classify_sip_number(e.phone_number) == "regex"]
        patterns.sort(key=lambda e: (-len(e.phone_number), e.date_created, e.sid))
        for entry in patterns:
            translated = compile_pattern(entry.phone_number)
            if re2.search(translated, dialed):
                return RouteMatch(entry.sid, "regex", entry.phone_number)
    catchalls = [e for e in org_entries if e.phone_number == "*"]
    if catchalls:
        best = min(catchalls, key=lambda e: (e.date_created, e.sid))
        return RouteMatch(best.sid, "catch-all", "*")
    return None


def random_dialed(rng: random.Random, model: dict[str, RouteEntry]) -> str:
    numbers = [e.phone_number for e in model.values() if is_dial_string(e.phone_number)]
    if numbers and rng.random() < 0.4:
        number = rng.choice(sorted(numbers))
        variants = [number, number.lstrip("+"), "+" + number, number.lstrip("+1")]
        return rng.choice(variants)
    return rng.choice(["", "+", "*", "1", "15", "1510555", "510555", "55"]) + "".join(
        rng.choice("0125#") for _ in range(rng.randint(0, 5))
    )


def test_snapshot_agrees_with_model_under_random_updates() -> None:
    rng = random.Random(20240601)
    kinds = {"exact": 0, "regex": 0, "catch-all": 0, "none": 0}
    for _round in range(15):
        model: dict[str, RouteEntry] = {}
        snap = RoutingSnapshot()
        for _step in range(120):
            if model and rng.random() < 0.25:
                sid = rng.choice(sorted(model))
                del model[sid]
                assert snap.remove(sid)
            else:
                entry = random_entry(rng)
                if any(
                    e.phone_number == entry.phone_number
                    and (not e.is_sip or e.organization_sid == entry.organization_sid)
                    for e in model.values()
                ):
                    continue  # the store keeps numbers unique (SPEC §1.3)
                model[entry.sid] = entry
                snap.upsert(entry)
            for _ in range(5):
                dialed = random_dialed(rng, model)
                dest = rng.choice(ORGS)
                caller = rng.choice([None, dest, *ORGS])
                expected = model_resolve(model, dialed, dest, caller)
                assert snap.resolve(dialed, dest, caller, "US") == expected, (dialed, dest)
                kinds[expected.kind if expected else "none"] += 1
        assert len(snap) == len(model)
    assert min(kinds.values()) > 250, kinds  # every outcome is exercised
