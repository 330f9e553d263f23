"""Fixtures of the conference tests (their helpers live in conference_harness.py)."""

from conference_harness import clock, store

__all__ = ["clock", "store"]
