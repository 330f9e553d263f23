"""One organization's regex SIP numbers behind a single RE2 Set (SPEC §2.2 step 2).

The patterns are added to an unanchored ``re2.Set`` in rank order, longest provisioned string
first, then older ``date_created``, then sid. One ``Set.Match`` pass returns the indexes of every
matching pattern, and the smallest index is the winner.

An RE2 Set cannot change once compiled. Adding or removing a pattern only marks the set stale;
the next :meth:`OrgRegexSet.best_match` rebuilds it (about 0.1 s for 10,000 patterns), so a burst
of updates costs one rebuild. If RE2 refuses to compile the set (memory budget), matching falls
back to trying each compiled pattern in rank order: slower, same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import re2

from rcmlrouter.routing.numbers import re2_options

# RE2's default budget (8 MiB) cannot hold a set of 10,000 patterns; the memory is only
# allocated as the program and its DFA cache grow.
SET_MAX_MEMORY = 512 << 20


@dataclass(frozen=True, slots=True, order=True)
class RegexRoute:
    """A regex SIP number ready for matching. Ordering is the match priority (lowest wins)."""

    rank: tuple[int, float, str]
    sid: str = field(compare=False)
    phone_number: str = field(compare=False)
    translated: str = field(compare=False)

    @classmethod
    def create(
        cls, sid: str, phone_number: str, translated: str, date_created: float
    ) -> RegexRoute:
        return cls((-len(phone_number), date_created, sid), sid, phone_number, translated)


class OrgRegexSet:
    """The regex numbers of one organization, matched in one pass."""

    __slots__ = ("_fallback", "_ranked", "_routes", "_set", "_stale")

    def __init__(self) -> None:
        self._routes: dict[str, RegexRoute] = {}
        self._ranked: list[RegexRoute] = []
        self._set: re2.Set | None = None
        self._fallback: list[re2._Regexp] | None = None
        self._stale = False

    def __len__(self) -> int:
        return len(self._routes)

    def put(self, route: RegexRoute) -> None:
        self._routes[route.sid] = route
        self._stale = True

    def discard(self, sid: str) -> bool:
        if self._routes.pop(sid, None) is None:
            return False
        self._stale = True
        return True

    def __bool__(self) -> bool:
        return bool(self._routes)

    def best_match(self, text: str) -> RegexRoute | None:
        """The highest-ranked route whose pattern is found in ``text``."""
        if self._stale:
            self._rebuild()
        if self._set is not None:
            matches = self._set.Match(text)
            return self._ranked[min(matches)] if matches else None
        for route, compiled in zip(self._ranked, self._fallback or (), strict=True):
            if compiled.search(text) is not None:
                return route
        return None

    def _rebuild(self) -> None:
        self._ranked = sorted(self._routes.values())
        self._set = None
        self._fallback = None
        self._stale = False
        if not self._ranked:
            return
        options = re2_options()
        options.max_mem = SET_MAX_MEMORY
        candidate = re2.Set.SearchSet(options)
        try:
            for route in self._ranked:
                candidate.Add(route.translated)
            candidate.Compile()
        except re2.error:
            self._fallback = [re2.compile(r.translated, re2_options()) for r in self._ranked]
            return
        self._set = candidate
