"""``[streams]``: defaults, environment overrides, every bad value reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcmlrouter.config import load_config
from rcmlrouter.errors import ConfigError


def test_defaults_refuse_ws_and_bound_everything() -> None:
    streams = load_config(None, {}).streams
    assert streams.allow_insecure is False
    assert streams.connect_timeout == 5.0
    assert streams.buffer_seconds == 120.0
    assert streams.send_queue == 500
    assert streams.max_message == 1 << 20
    assert streams.max_per_call == 4


def test_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[streams]\nallow_insecure = true\nbuffer_seconds = 30\n")
    streams = load_config(path, {"RCMLROUTER_STREAMS_MAX_PER_CALL": "2"}).streams
    assert (streams.allow_insecure, streams.buffer_seconds, streams.max_per_call) == (True, 30, 2)


def test_bad_values_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[streams]\nconnect_timeout = 0\nsend_queue = 1\nsurprise = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    problems = "\n".join(caught.value.problems)
    assert "unknown key streams.surprise" in problems
    assert "streams.connect_timeout" in problems
    assert "streams.send_queue" in problems
