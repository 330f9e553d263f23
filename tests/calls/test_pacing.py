"""Pacing of API calls (``calls/pacing.py``): slots per account and per trunk."""

from __future__ import annotations

import pytest

from rcmlrouter.calls.pacing import Pacer


def test_one_key_spaces_slots_by_one_over_the_rate() -> None:
    pacer = Pacer()
    slots = [pacer.reserve([("account:A", 10.0)], 100.0) for _ in range(5)]
    assert slots == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4])


def test_an_idle_key_starts_at_now_again() -> None:
    pacer = Pacer()
    pacer.reserve([("a", 2.0)], 0.0)
    assert pacer.reserve([("a", 2.0)], 10.0) == 10.0
    assert pacer.backlog("a", 10.0) == pytest.approx(0.5)


def test_the_slowest_key_decides_and_every_key_moves_on() -> None:
    pacer = Pacer()
    account, trunk = ("account:A", 100.0), ("trunk:lab", 2.0)
    assert pacer.reserve([account, trunk], 0.0) == 0.0
    assert pacer.reserve([account, trunk], 0.0) == pytest.approx(0.5)  # the trunk's 2 cps
    # another account on the same trunk waits behind it too; its own key is free
    assert pacer.reserve([("account:B", 100.0), trunk], 0.0) == pytest.approx(1.0)
    # the first account without the trunk (a sip: URI): only its own key, moved to 0.51
    assert pacer.reserve([account], 0.0) == pytest.approx(0.51)


def test_accounts_do_not_slow_each_other() -> None:
    pacer = Pacer()
    for _ in range(100):
        pacer.reserve([("account:A", 1.0)], 0.0)
    assert pacer.reserve([("account:B", 1.0)], 0.0) == 0.0


def test_a_rate_of_zero_does_not_limit() -> None:
    pacer = Pacer()
    assert {pacer.reserve([("trunk:x", 0.0)], 5.0) for _ in range(10)} == {5.0}


def test_idle_keys_are_forgotten_past_the_prune_size() -> None:
    pacer = Pacer()
    for i in range(10_050):
        pacer.reserve([(f"k{i}", 1000.0)], float(i))
    assert pacer.backlog("k0", 10_049.0) == 0.0
    assert len(pacer._next) < 10_050


def test_reserve_by_takes_a_slot_only_when_it_comes_in_time() -> None:
    pacer = Pacer()
    trunk = [("trunk:backup", 1.0)]
    assert pacer.reserve_by(trunk, 10.0, latest=20.0) == 10.0
    assert pacer.reserve_by(trunk, 10.0, latest=10.5) is None  # its slot is at 11: too late
    assert pacer.backlog("trunk:backup", 10.0) == pytest.approx(1.0)  # nothing was taken
    assert pacer.reserve_by(trunk, 10.0, latest=11.0) == pytest.approx(11.0)
    assert pacer.reserve_by([("trunk:free", 0.0)], 10.0, latest=10.0) == 10.0  # no limit
