"""Why a dialed string reaches the number it reaches: the resolver's steps, for people.

:func:`explain_route` asks :meth:`RoutingSnapshot.resolve` for the answer, then lists the facts
behind it, stage by stage (SPEC §2.2): the exact candidates in the order they are tried (from
:func:`~rcmlrouter.routing.numbers.exact_candidates`) and what each hit; the regex numbers found
in the dialed string, best first (the snapshot's own index and rank: longest pattern, then the
older number, then the smaller sid); the catch-all. The verdict is never computed here: the step
marked ``winner`` is the one resolve() returned. ``rcmlrouter route`` and the console's "Which
number answers?" page print these steps. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rcmlrouter.routing.numbers import exact_candidates, is_dial_string, to_e164
from rcmlrouter.routing.regex_set import RegexRoute
from rcmlrouter.routing.table import MatchKind, RouteMatch, RoutingSnapshot

Outcome = Literal["winner", "hit", "matched", "miss", "skipped", "not-tried"]
MAX_LISTED_PATTERNS = 20  # matching patterns listed (the count of the rest is given)


@dataclass(frozen=True, slots=True)
class RouteStep:
    """One fact of an explanation. ``subject``: the string looked up (exact), the pattern
    (regex) or ``*`` (catch-all); ``sid``: the number it names, if any."""

    stage: MatchKind
    outcome: Outcome
    text: str
    subject: str | None = None
    sid: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "stage": self.stage,
            "outcome": self.outcome,
            "text": self.text,
            "subject": self.subject,
            "sid": self.sid,
        }


@dataclass(frozen=True, slots=True)
class RouteExplanation:
    """The resolver's answer (``match``, from resolve() itself) and the steps behind it."""

    dialed: str
    match: RouteMatch | None
    steps: tuple[RouteStep, ...]


def explain_route(
    snapshot: RoutingSnapshot,
    dialed: str,
    destination_org: str,
    caller_org: str | None,
    default_region: str = "US",
) -> RouteExplanation:
    """Resolve the normalised ``dialed`` string and explain the answer (see the module doc)."""
    match = snapshot.resolve(dialed, destination_org, caller_org, default_region)
    steps = _exact_steps(snapshot, dialed, destination_org, default_region, match)
    steps += _regex_steps(snapshot, dialed, destination_org, caller_org, match)
    steps += _catchall_steps(snapshot, destination_org, match)
    return RouteExplanation(dialed, match, tuple(steps))


def _variant(candidate: str, dialed: str, default_region: str) -> str:
    if candidate == dialed:
        return "as dialed"
    if candidate == to_e164(dialed, default_region):
        return f"its E.164 form (region {default_region})"
    return "with the leading + removed" if dialed.startswith("+") else "with a leading + added"


def _exact_steps(
    snapshot: RoutingSnapshot,
    dialed: str,
    org: str,
    default_region: str,
    match: RouteMatch | None,
) -> list[RouteStep]:
    steps: list[RouteStep] = []
    if not dialed:
        return [RouteStep("exact", "miss", "The dialed string is empty: nothing to look up.")]
    answered = False
    for candidate in exact_candidates(dialed, default_region):
        variant = _variant(candidate, dialed, default_region)
        if answered:
            text = f"{candidate!r} ({variant}) is not tried: an earlier candidate answered."
            steps.append(RouteStep("exact", "not-tried", text, candidate))
            continue
        provider, sip = snapshot.exact_sids(candidate, org)
        sid = provider or sip
        if sid is None:
            text = f"{candidate!r} ({variant}): no provider or SIP number is provisioned as it."
            steps.append(RouteStep("exact", "miss", text, candidate))
            continue
        answered = True
        owner = "a provider number" if provider else "a SIP number of the organization"
        shadow = " (a SIP number with the same string loses to it)" if provider and sip else ""
        won = match is not None and match.kind == "exact" and match.sid == sid
        text = f"{candidate!r} ({variant}) is {owner}{shadow}: the first exact hit wins."
        steps.append(RouteStep("exact", "winner" if won else "hit", text, candidate, sid))
    return steps


def _regex_skip(
    snapshot: RoutingSnapshot,
    dialed: str,
    org: str,
    caller_org: str | None,
    match: RouteMatch | None,
) -> str | None:
    """Why the regex step is not reached or not applied; None when it runs."""
    if match is not None and match.kind == "exact":
        return "Not reached: an exact number answered."
    if not is_dial_string(dialed):
        return "Skipped: the dialed string is not made only of digits, +, * and #."
    if caller_org is not None and caller_org != org:
        return "Skipped: the caller's organization is not the destination organization."
    if snapshot.regex_count(org) == 0:
        return "The destination organization has no regex numbers."
    return None


def _regex_steps(
    snapshot: RoutingSnapshot,
    dialed: str,
    org: str,
    caller_org: str | None,
    match: RouteMatch | None,
) -> list[RouteStep]:
    skipped = _regex_skip(snapshot, dialed, org, caller_org, match)
    if skipped is not None:
        return [RouteStep("regex", "skipped", skipped)]
    found = snapshot.regex_matches(org, dialed)
    total = snapshot.regex_count(org)
    if not found:
        text = f"None of the organization's {total} regex numbers is found in {dialed!r}."
        return [RouteStep("regex", "miss", text)]
    intro = f"{len(found)} of the organization's {total} regex numbers are found in {dialed!r}."
    steps = [RouteStep("regex", "matched", intro)]
    best = found[0]
    for route in found[:MAX_LISTED_PATTERNS]:
        steps.append(_regex_step(route, best, match))
    if len(found) > MAX_LISTED_PATTERNS:
        rest = len(found) - MAX_LISTED_PATTERNS
        steps.append(RouteStep("regex", "matched", f"… and {rest} more, all ranked lower."))
    return steps


def _regex_step(route: RegexRoute, best: RegexRoute, match: RouteMatch | None) -> RouteStep:
    length = len(route.phone_number)
    if route is best:
        won = match is not None and match.kind == "regex" and match.sid == route.sid
        text = (
            f"{route.phone_number!r} is the longest pattern found ({length} characters; ties "
            "go to the older number, then the smaller sid)."
        )
        outcome: Outcome = "winner" if won else "matched"
        return RouteStep("regex", outcome, text, route.phone_number, route.sid)
    if length < len(best.phone_number):
        why = f"shorter ({length} characters)"
    elif route.rank[1] > best.rank[1]:
        why = f"as long ({length} characters) but created later"
    else:
        why = f"as long ({length} characters) and as old, but with a larger sid"
    text = f"{route.phone_number!r} is found too, but loses: {why}."
    return RouteStep("regex", "matched", text, route.phone_number, route.sid)


def _catchall_steps(
    snapshot: RoutingSnapshot, org: str, match: RouteMatch | None
) -> list[RouteStep]:
    if match is not None and match.kind != "catch-all":
        return [RouteStep("catch-all", "skipped", "Not reached: an earlier step answered.")]
    entries = snapshot.catchall_entries(org)
    if not entries:
        text = "The destination organization has no catch-all number '*': the call gets 404."
        return [RouteStep("catch-all", "miss", text, "*")]
    entry = entries[0]
    won = match is not None and match.sid == entry.sid
    text = "The organization's catch-all number '*' answers everything left."
    return [RouteStep("catch-all", "winner" if won else "hit", text, "*", entry.sid)]
