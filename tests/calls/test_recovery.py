"""Where an interrupted call ends: the later of its last checkpoint and its process's last
heartbeat (when known), never after now."""

from __future__ import annotations

from rcmlrouter.calls.recovery import interrupted_at
from rcmlrouter.store.records import CallRecord


def _call(start: float, answer: float | None) -> CallRecord:
    status = "ringing" if answer is None else "in-progress"
    return CallRecord("CA1", "AC1", None, "a", "b", "inbound", status, "exact", start, answer,
                      None, None, None)  # fmt: skip


def test_a_later_heartbeat_wins_over_the_answer() -> None:
    assert interrupted_at(_call(100.0, 101.0), 104.5, now=130.0) == (104.5, "heartbeat")


def test_without_a_heartbeat_the_last_checkpoint_counts() -> None:
    assert interrupted_at(_call(100.0, 101.0), None, now=130.0) == (101.0, "checkpoint")
    assert interrupted_at(_call(100.0, None), None, now=130.0) == (100.0, "checkpoint")


def test_a_heartbeat_older_than_the_checkpoint_does_not_go_back() -> None:
    """The call was answered after the node's last beat (up to one beat later)."""
    assert interrupted_at(_call(100.0, 101.0), 100.6, now=130.0) == (101.0, "checkpoint")


def test_never_after_now() -> None:
    """A clock running ahead on the dead node: the end is not put in the future."""
    assert interrupted_at(_call(100.0, 101.0), 140.0, now=130.0) == (130.0, "heartbeat")
