"""The Store contract for ``<Record>`` recordings, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from rcmlrouter.errors import NotFoundError, StoreError
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import Recording


async def test_recordings_add_get_and_list_newest_first(store: Store) -> None:
    first = Recording("RE1", "AC1", "CA1", 2.5, 100.0)
    second = Recording("RE2", "AC1", "CA2", 0.0, 200.0, status="completed", channels=1)
    other = Recording("RE3", "AC2", "CA3", 1.0, 300.0)
    for recording in (first, second, other):
        await store.add_recording(recording)
    assert await store.get_recording("RE1") == first
    page = await store.list_recordings("AC1", None, 0, 10)
    assert [r.sid for r in page.items] == ["RE2", "RE1"] and page.total == 2
    page = await store.list_recordings("AC1", "CA1", 0, 10)
    assert page.items == [first] and page.total == 1
    page = await store.list_recordings("AC1", None, 1, 1)
    assert page.items == [first] and page.total == 2
    with pytest.raises(NotFoundError):
        await store.get_recording("RE404")
    with pytest.raises(StoreError):
        await store.add_recording(first)  # a sid is written once
