"""The in-memory routing snapshot: exact dicts and per-organization regex indexes (SPEC §2.2).

Lookups never touch the store. The owner applies every committed change with :meth:`upsert`
and :meth:`remove` between resolves (single-threaded asyncio: no locks).

Memory: the snapshot keeps only strings for exact numbers (number -> sid, sid -> where it lives);
the :class:`RouteEntry` objects passed in are not retained, except for regex and catch-all numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from rcmlrouter.errors import InvalidNumberError
from rcmlrouter.routing.e164_filter import E164TailIndex
from rcmlrouter.routing.numbers import (
    NANP_REGIONS,
    classify_sip_number,
    compile_pattern,
    nanp_e164_candidate,
    to_e164,
)
from rcmlrouter.routing.regex_set import OrgRegexSet, RegexRoute

MatchKind = Literal["exact", "regex", "catch-all"]

_DIAL_CHARACTERS = "0123456789+*#"
_EMPTY: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """A provisioned number as the router needs it. ``date_created`` is epoch seconds."""

    sid: str
    organization_sid: str
    phone_number: str
    is_sip: bool
    date_created: float


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The number a dialed string resolved to, and how it matched."""

    sid: str
    kind: MatchKind
    phone_number: str


# The generated __init__ of a frozen dataclass assigns through object.__setattr__ (about 0.8 µs
# for three fields); the slot descriptors do the same for less than half that on the hot path.
_new_object = object.__new__
_set_sid = RouteMatch.__dict__["sid"].__set__
_set_kind = RouteMatch.__dict__["kind"].__set__
_set_phone_number = RouteMatch.__dict__["phone_number"].__set__


def _route_match(sid: str, kind: MatchKind, phone_number: str) -> RouteMatch:
    """``RouteMatch(sid, kind, phone_number)``, built without the frozen-dataclass __init__."""
    match: RouteMatch = _new_object(RouteMatch)
    _set_sid(match, sid)
    _set_kind(match, kind)
    _set_phone_number(match, phone_number)
    return match


@dataclass(slots=True)
class _OrgRoutes:
    exact: dict[str, str] = field(default_factory=dict)  # SIP dial/channel number -> sid
    regex: OrgRegexSet = field(default_factory=OrgRegexSet)
    catchall: dict[str, RouteEntry] = field(default_factory=dict)  # sid -> entry (normally one)


# Where a sid lives, for remove(): a provider number is just its number; a SIP number is
# (organization, number, kind).
_Location = str | tuple[str, str, str]


class RoutingSnapshot:
    """Every provisioned number, indexed for :meth:`resolve`.

    ``rejected`` lists the entries the constructor or :meth:`load` skipped (with the reason), e.g.
    a regex number that no longer passes the pattern rules.
    """

    __slots__ = ("_e164_keys", "_locations", "_orgs", "_provider", "rejected")

    def __init__(self, entries: Iterable[RouteEntry] = ()) -> None:
        self._provider: dict[str, str] = {}  # E.164 number -> sid, platform-wide
        self._orgs: dict[str, _OrgRoutes] = {}
        self._locations: dict[str, _Location] = {}
        self._e164_keys = E164TailIndex()
        self.rejected: list[tuple[RouteEntry, InvalidNumberError]] = []
        self.rejected.extend(self.load(entries))

    def __len__(self) -> int:
        return len(self._locations)

    def sids(self) -> list[str]:
        """The sid of every number in the snapshot."""
        return list(self._locations)

    def load(self, entries: Iterable[RouteEntry]) -> list[tuple[RouteEntry, InvalidNumberError]]:
        """Upsert many entries; return those refused instead of raising."""
        refused: list[tuple[RouteEntry, InvalidNumberError]] = []
        for entry in entries:
            try:
                self.upsert(entry)
            except InvalidNumberError as exc:
                refused.append((entry, exc))
        return refused

    def upsert(self, entry: RouteEntry) -> None:
        """Add or replace the number with ``entry.sid``.

        Raises InvalidNumberError (InvalidPatternError for regex numbers) when a SIP number breaks
        the provisioning rules; the snapshot is then unchanged.
        """
        if not entry.is_sip:
            self.remove(entry.sid)
            if entry.phone_number not in self._provider:
                self._e164_keys.add(entry.phone_number)
            self._provider[entry.phone_number] = entry.sid
            self._locations[entry.sid] = entry.phone_number
            return
        kind = classify_sip_number(entry.phone_number)
        route = None
        if kind == "regex":
            translated = compile_pattern(entry.phone_number)
            route = RegexRoute.create(entry.sid, entry.phone_number, translated, entry.date_created)
        self.remove(entry.sid)
        org = self._orgs.get(entry.organization_sid) or self._orgs.setdefault(
            entry.organization_sid, _OrgRoutes()
        )
        if route is not None:
            org.regex.put(route)
        elif kind == "catchall":
            org.catchall[entry.sid] = entry
        else:
            if entry.phone_number not in org.exact:
                self._e164_keys.add(entry.phone_number)
            org.exact[entry.phone_number] = entry.sid
        self._locations[entry.sid] = (entry.organization_sid, entry.phone_number, kind)

    def remove(self, sid: str) -> bool:
        """Forget the number with ``sid``; False if it was not there."""
        location = self._locations.pop(sid, None)
        if location is None:
            return False
        if isinstance(location, str):
            if self._provider.get(location) == sid:
                del self._provider[location]
                self._forget_key(location)
            return True
        org_sid, number, kind = location
        org = self._orgs[org_sid]
        if kind == "regex":
            org.regex.discard(sid)
        elif kind == "catchall":
            org.catchall.pop(sid, None)
        elif org.exact.get(number) == sid:
            del org.exact[number]
            self._forget_key(number)
        return True

    def resolve(
        self,
        dialed: str,
        destination_org: str,
        caller_org: str | None,
        default_region: str = "US",
    ) -> RouteMatch | None:
        """Find the number for an already normalised dialed string (SPEC §2.2).

        ``dialed`` must come from :func:`normalize_dialed` (applied once). Regex numbers are
        searched in the dialed string itself. Returns None when nothing matches; the caller
        answers SIP 404.
        """
        org = self._orgs.get(destination_org)
        sid = self._provider.get(dialed) or (org.exact.get(dialed) if org is not None else None)
        if sid is not None:
            return _route_match(sid, "exact", dialed)
        exact = self._resolve_variants(dialed, org, default_region)
        if exact is not None:
            return exact
        if org is None:
            return None
        if (
            org.regex
            and (caller_org is None or caller_org == destination_org)
            and dialed
            and not dialed.strip(_DIAL_CHARACTERS)
        ):
            route = org.regex.best_match(dialed)
            if route is not None:
                return _route_match(route.sid, "regex", route.phone_number)
        if org.catchall:
            entry = min(org.catchall.values(), key=lambda e: (e.date_created, e.sid))
            return _route_match(entry.sid, "catch-all", entry.phone_number)
        return None

    def _resolve_variants(
        self, dialed: str, org: _OrgRoutes | None, default_region: str
    ) -> RouteMatch | None:
        """Exact step for the E.164 form and the +-toggled form (the dialed string missed)."""
        provider = self._provider
        org_exact = org.exact if org is not None else _EMPTY
        if not dialed:
            return None
        if default_region in NANP_REGIONS and dialed.isdigit() and not dialed.startswith("011"):
            # North American plain digits: the E.164 form is known without phonenumbers.
            # Provider numbers are valid by construction; a SIP number must pass it too.
            e164 = nanp_e164_candidate(dialed)
            if e164 is not None:
                sid = provider.get(e164)
                if sid is None and e164 in org_exact and to_e164(dialed, default_region):
                    sid = org_exact[e164]
                if sid is not None:
                    return _route_match(sid, "exact", e164)
        elif self._e164_keys.may_hit(dialed):
            e164 = to_e164(dialed, default_region)
            if e164 is not None:
                sid = provider.get(e164) or org_exact.get(e164)
                if sid is not None:
                    return _route_match(sid, "exact", e164)
        if dialed.strip(_DIAL_CHARACTERS):
            return None  # not a dial string: no "+" variant
        toggled = dialed[1:] if dialed[0] == "+" else "+" + dialed
        sid = provider.get(toggled) or org_exact.get(toggled)
        return None if sid is None else _route_match(sid, "exact", toggled)

    # ---- read-only views for explanations (routing/explain.py); resolve() decides ----------

    def exact_sids(self, number: str, organization_sid: str) -> tuple[str | None, str | None]:
        """(provider number sid, destination-organization SIP number sid) provisioned as
        exactly ``number``; either may be None."""
        org = self._orgs.get(organization_sid)
        return self._provider.get(number), org.exact.get(number) if org is not None else None

    def regex_matches(self, organization_sid: str, dialed: str) -> list[RegexRoute]:
        """The organization's regex numbers found in ``dialed``, best first (the order the
        regex step picks by)."""
        org = self._orgs.get(organization_sid)
        return org.regex.all_matches(dialed) if org is not None and org.regex else []

    def regex_count(self, organization_sid: str) -> int:
        org = self._orgs.get(organization_sid)
        return len(org.regex) if org is not None else 0

    def catchall_entries(self, organization_sid: str) -> list[RouteEntry]:
        """The organization's catch-all numbers, oldest first (normally one)."""
        org = self._orgs.get(organization_sid)
        if org is None:
            return []
        return sorted(org.catchall.values(), key=lambda e: (e.date_created, e.sid))

    def _exact_keys(self) -> Iterator[str]:
        yield from self._provider
        for org in self._orgs.values():
            yield from org.exact

    def _forget_key(self, key: str) -> None:
        self._e164_keys.discard(key)
        if self._e164_keys.needs_rebuild():
            self._e164_keys.rebuild(self._exact_keys())
