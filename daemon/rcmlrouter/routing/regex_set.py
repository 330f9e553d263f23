"""One organization's regex SIP numbers behind a literal-prefix index (SPEC §2.2 step 2).

Patterns are ranked longest provisioned string first, then older ``date_created``, then sid; the
best match is the matching pattern of lowest rank. One RE2 Set over thousands of patterns is
slow on a text it has not seen before (its DFA builds a state over every pattern for each new
input), so patterns are bucketed by the literal every match must start with
(:func:`~rcmlrouter.routing.literal_prefix.literal_prefixes`):

- anchored literals (``^9012...``) by their first ``q`` characters, ``q`` the largest of
  :data:`KEY_LENGTHS` that fits, probed with the prefixes of the dialed string (one dictionary
  lookup per key length in use);
- unanchored literals (``16508.*``) by sampled q-grams: a literal of length ``l`` is keyed by its
  ``q``-grams at offsets ``0 .. s-1`` (``s`` = :data:`STRIDE` when ``l >= q + STRIDE - 1``), so
  the dialed string is probed only at positions ``0, s, 2s, ...``: any occurrence of the literal
  covers one of them with a whole q-gram. A 14-digit string costs about 3 lookups per q in use;
- patterns without a usable literal (``.*5$``) in one bucket that every lookup tries.

Each bucket is a small RE2 Set in rank order. A lookup probes the dictionaries (a few dozen
lookups at most), then matches only the buckets found, best first, stopping once no remaining
bucket can hold a better rank. Results are memoised per dialed string (bounded LRU) because real
traffic repeats numbers. Any change marks the index stale and clears the memo; the next lookup
rebuilds it (about 0.2 s for 10,000 patterns), so a burst of updates costs one rebuild.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import re2

from rcmlrouter.routing.literal_prefix import PrefixKey, literal_prefixes
from rcmlrouter.routing.numbers import re2_options

KEY_LENGTHS = (1, 2, 3, 4, 6, 8)
STRIDE = 3
BUCKET_TARGET = 4
_ANCHOR = "\x00"  # never in a pattern (compile_pattern refuses control characters)
RESULT_CACHE_SIZE = 4096
# RE2's default budget (8 MiB) cannot hold a set of thousands of patterns; the memory is only
# allocated as the program and its DFA cache grow. Small buckets keep the default.
SET_MAX_MEMORY = 512 << 20
LARGE_BUCKET = 256
_PROBE_CACHE_LENGTH = 64
_NO_MATCH = -1
# RE2 builds DFA states on first use (a few µs for a fresh set): see _buckets.
_WARM_UP_TAIL = "0123456789"


@dataclass(frozen=True, slots=True, order=True)
class RegexRoute:
    """A regex SIP number ready for matching. Ordering is the match priority (lowest wins)."""

    rank: tuple[int, float, str]
    sid: str = field(compare=False)
    phone_number: str = field(compare=False)
    translated: str = field(compare=False)
    prefixes: frozenset[PrefixKey] | None = field(compare=False, default=None)

    @classmethod
    def create(
        cls, sid: str, phone_number: str, translated: str, date_created: float
    ) -> RegexRoute:
        rank = (-len(phone_number), date_created, sid)
        return cls(rank, sid, phone_number, translated, literal_prefixes(translated))


class _Bucket:
    """Patterns sharing a probe key, as positions in the ranked list, matched in one pass."""

    __slots__ = ("_fallback", "_matcher", "first", "positions")

    def __init__(
        self, positions: list[int], ranked: list[RegexRoute], options: re2.Options
    ) -> None:
        self.positions = positions
        self.first = positions[0]
        self._matcher: re2.Set | None = re2.Set.SearchSet(options)
        self._fallback: list[re2._Regexp] = []
        try:
            for position in positions:
                self._matcher.Add(ranked[position].translated)
            self._matcher.Compile()
        except re2.error:  # over the memory budget: try the patterns one by one
            self._matcher = None
            quiet = re2_options()
            self._fallback = [re2.compile(ranked[p].translated, quiet) for p in positions]

    def matching(self, encoded: bytes) -> list[int]:
        """Every matching position (for explanations; :meth:`best` is the lowest of them)."""
        if self._matcher is not None:
            return [self.positions[i] for i in self._matcher.Match(encoded) or ()]
        return [
            position
            for position, compiled in zip(self.positions, self._fallback, strict=True)
            if compiled.search(encoded) is not None
        ]

    def best(self, encoded: bytes) -> int:
        """The lowest matching position, or -1."""
        if self._matcher is not None:
            matches = self._matcher.Match(encoded)
            return self.positions[min(matches)] if matches else _NO_MATCH
        for position, compiled in zip(self.positions, self._fallback, strict=True):
            if compiled.search(encoded) is not None:
                return position
        return _NO_MATCH


class OrgRegexSet:
    """The regex numbers of one organization, indexed by literal prefix."""

    __slots__ = ("_always", "_cache", "_keys", "_probes", "_ranked", "_routes", "_shapes", "_stale")

    def __init__(self) -> None:
        self._routes: dict[str, RegexRoute] = {}
        self._ranked: list[RegexRoute] = []
        # Anchored keys are stored behind _ANCHOR, unanchored ones bare: one table, one probe pass
        # over _ANCHOR + text.
        self._keys: dict[str, _Bucket] = {}
        self._shapes: tuple[frozenset[int], frozenset[tuple[int, int]]] = (frozenset(), frozenset())
        self._always: _Bucket | None = None
        self._probes: dict[int, tuple[slice, ...]] = {}
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._stale = False

    def __len__(self) -> int:
        return len(self._routes)

    def __bool__(self) -> bool:
        return bool(self._routes)

    def put(self, route: RegexRoute) -> None:
        self._routes[route.sid] = route
        self._mark_stale()

    def discard(self, sid: str) -> bool:
        if self._routes.pop(sid, None) is None:
            return False
        self._mark_stale()
        return True

    def best_match(self, text: str) -> RegexRoute | None:
        """The highest-ranked route whose pattern is found in ``text``."""
        cache = self._cache
        position = cache.get(text)
        if position is None:
            if self._stale:
                self._rebuild()
            position = self._search(text)
            cache[text] = position
            if len(cache) > RESULT_CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(text)
        return None if position == _NO_MATCH else self._ranked[position]

    def all_matches(self, text: str) -> list[RegexRoute]:
        """Every route whose pattern is found in ``text``, best first: what :meth:`best_match`
        chose from (its answer is the first). Probes the same buckets; not memoised."""
        if self._stale:
            self._rebuild()
        encoded = text.encode()
        positions: set[int] = set()
        for bucket in self._candidate_buckets(text):
            positions.update(bucket.matching(encoded))
        return [self._ranked[position] for position in sorted(positions)]

    def _candidate_buckets(self, text: str) -> list[_Bucket]:
        """The buckets that may hold a pattern found in ``text``."""
        slices = self._probes.get(len(text))
        if slices is None:
            slices = self._probes_for(len(text))
        probe = _ANCHOR + text
        found = list(filter(None, map(self._keys.get, map(probe.__getitem__, slices))))
        if self._always is not None:
            found.append(self._always)
        return found

    def _search(self, text: str) -> int:
        found = self._candidate_buckets(text)
        if not found:
            return _NO_MATCH
        encoded = text.encode()
        if len(found) == 1:
            return found[0].best(encoded)
        found.sort(key=_first_position)
        best = _NO_MATCH
        for bucket in found:
            if best != _NO_MATCH and bucket.first >= best:
                break  # sorted: no remaining bucket can beat it
            position = bucket.best(encoded)
            if position != _NO_MATCH and (best == _NO_MATCH or position < best):
                best = position
        return best

    def _probes_for(self, length: int) -> tuple[slice, ...]:
        """Slices of ``_ANCHOR + text`` to look up for a text of ``length`` characters."""
        anchored_lengths, samplings = self._shapes
        wanted = {(0, size + 1) for size in anchored_lengths if size <= length}
        for size, stride in samplings:
            wanted.update((1 + i, 1 + i + size) for i in range(0, length - size + 1, stride))
        result = tuple(slice(start, stop) for start, stop in sorted(wanted))
        if length <= _PROBE_CACHE_LENGTH:
            self._probes[length] = result
        return result

    def _mark_stale(self) -> None:
        self._stale = True
        self._cache.clear()

    def _rebuild(self) -> None:
        self._ranked = ranked = sorted(self._routes.values())
        self._stale = False
        self._probes.clear()
        anchored: list[tuple[str, int]] = []
        unanchored: list[tuple[str, int]] = []
        always: list[int] = []
        for position, route in enumerate(ranked):
            if route.prefixes is None:
                always.append(position)
                continue
            for is_anchored, literal in route.prefixes:
                (anchored if is_anchored else unanchored).append((literal, position))
        groups: dict[str, list[int]] = {}
        samples: dict[str, str] = {}  # key -> a literal that produced it, to warm the bucket up
        cap = _anchored_key_cap(anchored)
        anchored_lengths = set()
        for literal, position in anchored:
            size = _key_length(min(len(literal), cap))
            anchored_lengths.add(size)
            key = _ANCHOR + literal[:size]
            _append(groups.setdefault(key, []), position)
            samples.setdefault(key, literal)
        samplings = set()
        for literal, position in unanchored:
            size, stride = _sampling(len(literal))
            samplings.add((size, stride))
            for offset in range(stride):
                key = literal[offset : offset + size]
                _append(groups.setdefault(key, []), position)
                samples.setdefault(key, literal)
        self._shapes = (frozenset(anchored_lengths), frozenset(samplings))
        shared: dict[tuple[int, ...], _Bucket] = {}
        self._keys = _buckets(groups, samples, ranked, shared)
        if always:
            self._always = _buckets({"": always}, {}, ranked, shared)[""]
        else:
            self._always = None


def _anchored_key_cap(anchored: list[tuple[str, int]]) -> int:
    """The shortest key length whose buckets stay within BUCKET_TARGET patterns.

    Shorter keys mean fewer probes per lookup (one per key length in use); longer keys mean
    smaller buckets.
    """
    for size in KEY_LENGTHS[:-1]:
        counts: dict[str, set[int]] = {}
        for literal, position in anchored:
            if len(literal) >= size:
                counts.setdefault(literal[:size], set()).add(position)
        if max(map(len, counts.values()), default=0) <= BUCKET_TARGET:
            return size
    return KEY_LENGTHS[-1]


def _key_length(length: int) -> int:
    return max(q for q in KEY_LENGTHS if q <= length)


def _sampling(length: int) -> tuple[int, int]:
    """(q-gram size, stride) for an unanchored literal of ``length`` characters."""
    if length >= STRIDE:
        return _key_length(length - STRIDE + 1), STRIDE
    size = _key_length(length)
    return size, length - size + 1


def _buckets(
    groups: dict[str, list[int]],
    samples: dict[str, str],
    ranked: list[RegexRoute],
    shared: dict[tuple[int, ...], _Bucket],
) -> dict[str, _Bucket]:
    """One bucket per key; keys with the same patterns share one (a pattern alone, often).

    A new bucket is matched once against the literal behind its key followed by every digit,
    which builds the DFA states that the dialed strings reaching it usually take.
    """
    small, large = re2_options(), re2_options()
    large.max_mem = SET_MAX_MEMORY
    result: dict[str, _Bucket] = {}
    for key, positions in groups.items():
        signature = tuple(positions)
        bucket = shared.get(signature)
        if bucket is None:
            options = large if len(positions) > LARGE_BUCKET else small
            bucket = shared[signature] = _Bucket(positions, ranked, options)
            bucket.best((samples.get(key, "") + _WARM_UP_TAIL).encode())
        result[key] = bucket
    return result


def _append(group: list[int], position: int) -> None:
    if not group or group[-1] != position:
        group.append(position)


def _first_position(bucket: _Bucket) -> int:
    return bucket.first
