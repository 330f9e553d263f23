"""The media clock's grid arithmetic and catch-up, with a fake loop time."""

from __future__ import annotations

import asyncio

import pytest

from rcmlrouter.media import clock
from rcmlrouter.media.clock import PTIME, ClockStream, MediaClock, next_grid_time, packets_due


def test_packets_due_on_the_grid() -> None:
    assert packets_due(10.0, 9.99) == 0
    assert packets_due(10.0, 10.0) == 1
    assert packets_due(10.0, 10.0199) == 1
    assert packets_due(10.0, 10.02) == 2
    assert packets_due(10.0, 10.0 + 50 * PTIME) == 51
    # float noise around a grid point does not lose or add a packet
    assert packets_due(0.1, 0.1 + 3 * 0.02 - 1e-9) == 4


def test_next_grid_time_is_strictly_after_now() -> None:
    assert next_grid_time(5.0, 5.0) == pytest.approx(5.02)
    assert next_grid_time(5.0, 5.013) == pytest.approx(5.02)
    assert next_grid_time(5.0, 5.02 - 1e-9) == pytest.approx(5.04)
    assert next_grid_time(5.0, 6.0) == pytest.approx(6.02)


def test_stream_catches_up_then_skips_ahead() -> None:
    ticks: list[int] = []
    stream = ClockStream(lambda: ticks.append(1), start=0.0)
    stream.run_due(0.0)
    assert stream.sent == 1
    stream.run_due(0.061)  # three late packets: sent now, not dropped
    assert stream.sent == 4
    stream.run_due(1.0)  # 47 due: at most MAX_CATCH_UP, the rest skipped
    assert stream.sent == 4 + clock.MAX_CATCH_UP
    assert stream.skipped == 51 - 4 - clock.MAX_CATCH_UP
    stream.run_due(1.02)
    assert stream.sent == 4 + clock.MAX_CATCH_UP + 1
    assert len(ticks) == stream.sent


async def test_one_callback_drives_every_stream() -> None:
    media_clock = MediaClock()
    counts = [0, 0, 0]

    def ticker(i: int) -> ClockStream:
        return media_clock.register(lambda: counts.__setitem__(i, counts[i] + 1))

    streams = [ticker(i) for i in range(3)]
    assert len({s.start for s in streams}) == 1  # all on the same grid point
    await asyncio.sleep(0.5)
    for stream in streams:
        media_clock.unregister(stream)
    assert all(abs(c - 25) <= 2 for c in counts), counts
    assert abs(media_clock.ticks - 25) <= 2  # one loop callback per tick, not one per stream
    assert media_clock._handle is None


async def test_a_failing_stream_is_dropped_the_others_go_on() -> None:
    media_clock = MediaClock()
    good = [0]

    def bad() -> None:
        raise RuntimeError("boom")

    media_clock.register(bad)
    stream = media_clock.register(lambda: good.__setitem__(0, good[0] + 1))
    await asyncio.sleep(0.1)
    assert len(media_clock) == 1
    assert good[0] >= 3
    media_clock.unregister(stream)
