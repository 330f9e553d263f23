"""Fixtures for the media engine tests: a free RTP port pair (WAVs and tones made on the spot
come from support/tones.py)."""

from __future__ import annotations

import pytest

from support.ports import free_rtp_port


@pytest.fixture
def rtp_port() -> int:
    return free_rtp_port()
