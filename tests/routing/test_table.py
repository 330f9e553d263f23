"""RoutingSnapshot: the order and scoping rules of SPEC §2.2."""

from __future__ import annotations

import itertools

import pytest

from rcmlrouter.errors import InvalidNumberError, InvalidPatternError
from rcmlrouter.routing.table import RouteEntry, RouteMatch, RoutingSnapshot

ORG_A = "OR" + "a" * 32
ORG_B = "OR" + "b" * 32
_counter = itertools.count(1)


def sip(number: str, org: str = ORG_A, date: float = 1000.0, sid: str | None = None) -> RouteEntry:
    return RouteEntry(sid or f"PN{next(_counter):032x}", org, number, True, date)


def provider(number: str, org: str = ORG_A, sid: str | None = None) -> RouteEntry:
    return RouteEntry(sid or f"PN{next(_counter):032x}", org, number, False, 1000.0)


def resolve(snap: RoutingSnapshot, dialed: str, org: str = ORG_A, caller: str | None = None):
    return snap.resolve(dialed, org, caller, "US")


def test_seed_regex_table_prefers_longest_pattern() -> None:
    entries = [sip("16508251256"), sip("16.*"), sip("16508.*")]
    snap = RoutingSnapshot(entries)
    assert resolve(snap, "16508251255") == RouteMatch(entries[2].sid, "regex", "16508.*")
    assert resolve(snap, "16508251256") == RouteMatch(entries[0].sid, "exact", "16508251256")
    assert resolve(snap, "1699") == RouteMatch(entries[1].sid, "regex", "16.*")
    assert resolve(snap, "2699") is None


@pytest.mark.parametrize(
    ("pattern", "dialed"),
    [
        ("7777|8888", "7777"),
        ("7777|8888", "8888"),
        ("^*77...33#$", "*7711133#"),
        ("^[12]2233#$", "12233#"),
        ("^[12]2233#$", "22233#"),
        ("^7688[456]#$", "76884#"),
        ("[45]234[23]", "42342"),
        ("999...", "999000"),
        ("+1512.*", "+15121234567"),
    ],
)
def test_seed_regex_examples_route(pattern: str, dialed: str) -> None:
    entry = sip(pattern)
    snap = RoutingSnapshot([entry, sip("1")])
    assert resolve(snap, dialed) == RouteMatch(entry.sid, "regex", pattern)


def test_regex_is_searched_in_the_dialed_string_only() -> None:
    entry = sip("+1512.*")
    snap = RoutingSnapshot([entry])
    assert resolve(snap, "+15121234567") == RouteMatch(entry.sid, "regex", "+1512.*")
    assert resolve(snap, "15121234567") is None


def test_e164_and_plus_variants() -> None:
    pstn = provider("+15105555555")
    short = sip("1234")
    snap = RoutingSnapshot([pstn, short])
    assert resolve(snap, "5105555555") == RouteMatch(pstn.sid, "exact", "+15105555555")
    assert resolve(snap, "15105555555") == RouteMatch(pstn.sid, "exact", "+15105555555")
    assert resolve(snap, "+15105555555") == RouteMatch(pstn.sid, "exact", "+15105555555")
    assert resolve(snap, "+1234") == RouteMatch(short.sid, "exact", "1234")
    assert resolve(snap, "12345") is None


def test_e164_lookup_uses_default_region() -> None:
    uk = provider("+442079460958")
    snap = RoutingSnapshot([uk])
    assert snap.resolve("02079460958", ORG_A, None, "GB") == RouteMatch(
        uk.sid, "exact", "+442079460958"
    )
    assert snap.resolve("02079460958", ORG_A, None, "US") is None


def test_plus_added_for_sip_number_with_plus() -> None:
    entry = sip("+4321")
    snap = RoutingSnapshot([entry])
    assert resolve(snap, "4321") == RouteMatch(entry.sid, "exact", "+4321")


def test_dialed_string_wins_over_e164_form() -> None:
    national = sip("5105555555")
    pstn = provider("+15105555555")
    snap = RoutingSnapshot([national, pstn])
    assert resolve(snap, "5105555555") == RouteMatch(national.sid, "exact", "5105555555")


def test_sip_numbers_are_scoped_to_destination_org() -> None:
    in_a = sip("1234", ORG_A)
    snap = RoutingSnapshot([in_a])
    assert resolve(snap, "1234", ORG_A) is not None
    assert resolve(snap, "1234", ORG_B) is None
    assert resolve(snap, "1234", "OR-unknown") is None


def test_same_sip_number_in_two_orgs() -> None:
    in_a, in_b = sip("1234", ORG_A), sip("1234", ORG_B)
    snap = RoutingSnapshot([in_a, in_b])
    assert resolve(snap, "1234", ORG_A) == RouteMatch(in_a.sid, "exact", "1234")
    assert resolve(snap, "1234", ORG_B) == RouteMatch(in_b.sid, "exact", "1234")


def test_provider_numbers_match_from_any_org() -> None:
    pstn = provider("+15105555555", ORG_A)
    snap = RoutingSnapshot([pstn])
    assert resolve(snap, "+15105555555", ORG_B) == RouteMatch(pstn.sid, "exact", "+15105555555")
    assert resolve(snap, "5105555555", "OR-unknown") is not None


def test_provider_number_checked_before_sip_number_with_same_string() -> None:
    pstn = provider("+15105555555", ORG_B)
    shadow = sip("+15105555555", ORG_A)
    snap = RoutingSnapshot([shadow, pstn])
    assert resolve(snap, "+15105555555", ORG_A) == RouteMatch(pstn.sid, "exact", "+15105555555")


def test_channel_numbers_are_exact_keys_in_org() -> None:
    channel = sip("mms:+12345678", ORG_A)
    snap = RoutingSnapshot([channel, sip("*")])
    assert resolve(snap, "mms:+12345678") == RouteMatch(channel.sid, "exact", "mms:+12345678")
    assert resolve(snap, "mms:+12345678", ORG_B) is None


def test_exact_hit_beats_regex_and_catchall() -> None:
    exact = sip("5551234")
    snap = RoutingSnapshot([sip("555.*"), sip("*"), exact])
    assert resolve(snap, "5551234") == RouteMatch(exact.sid, "exact", "5551234")


def test_regex_requires_caller_org_unknown_or_equal() -> None:
    pattern = sip("555.*", ORG_A)
    snap = RoutingSnapshot([pattern])
    assert resolve(snap, "5551234", ORG_A, caller=None) is not None
    assert resolve(snap, "5551234", ORG_A, caller=ORG_A) is not None
    assert resolve(snap, "5551234", ORG_A, caller=ORG_B) is None
    assert resolve(snap, "5551234", ORG_B, caller=None) is None


def test_regex_requires_dial_string() -> None:
    pattern = sip("al.ce")
    snap = RoutingSnapshot([pattern])
    assert resolve(snap, "alice") is None
    digits = sip("12.4")
    snap.upsert(digits)
    assert resolve(snap, "1234#") == RouteMatch(digits.sid, "regex", "12.4")


def test_catchall_of_destination_org() -> None:
    catch_a = sip("*", ORG_A)
    snap = RoutingSnapshot([catch_a, sip("555.*", ORG_A)])
    assert resolve(snap, "alice") == RouteMatch(catch_a.sid, "catch-all", "*")
    assert resolve(snap, "") == RouteMatch(catch_a.sid, "catch-all", "*")
    # The caller-org rule blocks the regex, not the catch-all.
    assert resolve(snap, "5551234", caller=ORG_B) == RouteMatch(catch_a.sid, "catch-all", "*")
    assert resolve(snap, "alice", ORG_B) is None


def test_regex_ties_broken_by_date_then_sid() -> None:
    newer = sip("12.4", date=2000.0, sid="PN" + "0" * 32)
    older = sip("1.34", date=1000.0, sid="PN" + "f" * 32)
    snap = RoutingSnapshot([newer, older])
    assert resolve(snap, "1234") == RouteMatch(older.sid, "regex", "1.34")
    low_sid = sip("1..4", date=1000.0, sid="PN" + "1" * 32)
    snap.upsert(low_sid)
    assert resolve(snap, "1234") == RouteMatch(low_sid.sid, "regex", "1..4")


def test_pattern_length_uses_provisioned_string() -> None:
    # "+1512.*" translates to "\+1512.*" (8 chars) but ranks by its 7 provisioned characters.
    plus = sip("+1512.*", date=1000.0)
    other = sip("+15.{3}", date=500.0)  # 7 characters, older
    snap = RoutingSnapshot([plus, other])
    assert resolve(snap, "+15121234567") == RouteMatch(other.sid, "regex", "+15.{3}")


def test_upsert_and_remove_update_regex_sets() -> None:
    short = sip("55.*")
    snap = RoutingSnapshot([short])
    assert resolve(snap, "5551234") == RouteMatch(short.sid, "regex", "55.*")
    longer = sip("5551.*")
    snap.upsert(longer)
    assert resolve(snap, "5551234") == RouteMatch(longer.sid, "regex", "5551.*")
    assert snap.remove(longer.sid) is True
    assert resolve(snap, "5551234") == RouteMatch(short.sid, "regex", "55.*")
    changed = RouteEntry(short.sid, ORG_A, "66.*", True, short.date_created)
    snap.upsert(changed)
    assert resolve(snap, "5551234") is None
    assert resolve(snap, "6612") == RouteMatch(short.sid, "regex", "66.*")
    assert len(snap) == 1


def test_upsert_changes_kind_and_number() -> None:
    entry = sip("1234")
    snap = RoutingSnapshot([entry])
    snap.upsert(RouteEntry(entry.sid, ORG_A, "12.*", True, 1.0))
    assert resolve(snap, "1234") == RouteMatch(entry.sid, "regex", "12.*")
    snap.upsert(RouteEntry(entry.sid, ORG_A, "*", True, 1.0))
    assert resolve(snap, "1234") == RouteMatch(entry.sid, "catch-all", "*")
    snap.upsert(RouteEntry(entry.sid, ORG_B, "+15105555555", False, 1.0))
    assert resolve(snap, "5105555555") == RouteMatch(entry.sid, "exact", "+15105555555")
    assert resolve(snap, "1234") is None
    assert len(snap) == 1


def test_remove_unknown_sid_and_moved_number() -> None:
    first = provider("+15105555555")
    snap = RoutingSnapshot([first])
    assert snap.remove("PN-unknown") is False
    second = provider("+15105555555")  # a stale row replaced by a new one
    snap.upsert(second)
    assert snap.remove(first.sid) is True
    assert resolve(snap, "5105555555") == RouteMatch(second.sid, "exact", "+15105555555")
    assert snap.remove(second.sid) is True
    assert resolve(snap, "5105555555") is None
    assert len(snap) == 0


def test_remove_catchall_and_exact() -> None:
    catch, exact = sip("*"), sip("77")
    snap = RoutingSnapshot([catch, exact])
    snap.remove(catch.sid)
    snap.remove(exact.sid)
    assert resolve(snap, "77") is None


def test_invalid_regex_is_refused_and_snapshot_unchanged() -> None:
    entry = sip("12.*")
    snap = RoutingSnapshot([entry])
    with pytest.raises(InvalidPatternError):
        snap.upsert(RouteEntry(entry.sid, ORG_A, ".*", True, 1.0))
    assert resolve(snap, "1234") == RouteMatch(entry.sid, "regex", "12.*")
    with pytest.raises(InvalidNumberError):
        snap.upsert(sip("   "))


def test_bulk_load_reports_rejected_entries() -> None:
    good, bad_regex, bad_empty = sip("12.*"), sip("(1)\\1"), sip("")
    snap = RoutingSnapshot([good, bad_regex, bad_empty])
    assert len(snap) == 1
    assert [entry for entry, _ in snap.rejected] == [bad_regex, bad_empty]
    assert isinstance(snap.rejected[0][1], InvalidPatternError)
    assert snap.load([sip("(")])[0][1].args[0].startswith("regex number is not valid RE2")


def test_many_patterns_share_one_set() -> None:
    entries = [sip(f"^{n:05d}[0-9]*#$", date=float(n)) for n in range(2000)]
    snap = RoutingSnapshot(entries)
    assert resolve(snap, "01999123#") == RouteMatch(entries[1999].sid, "regex", "^01999[0-9]*#$")
    assert resolve(snap, "01999123") is None


def test_e164_lookup_survives_mass_removal_and_rebuild() -> None:
    entries = [provider(f"+1510555{n:04d}") for n in range(1500)]
    snap = RoutingSnapshot(entries)
    for entry in entries[:1400]:
        snap.remove(entry.sid)
    assert resolve(snap, "5105550000") is None
    assert resolve(snap, "5105551499") == RouteMatch(entries[1499].sid, "exact", "+15105551499")
    assert len(snap) == 100
