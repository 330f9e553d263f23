"""CallbackOutbox as the journal: nothing is delivered before its commit; order per call;
what a crash left undelivered is recovered ahead of new events. Real SQLite, real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rcmlrouter import metrics
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.config import CallbacksConfig
from rcmlrouter.errors import StoreError
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher
from rcmlrouter.store.records import CallRecord
from rcmlrouter.store.sqlite import SqliteStore


class Receiver:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/cb", self._cb)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/cb"

    async def _cb(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.seen.append((str(form["CallSid"]), str(form["SequenceNumber"])))
        return web.Response(text="")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


async def _outbox(path: Path) -> tuple[CallbackOutbox, SqliteStore]:
    store = await SqliteStore.open(path)
    fetcher = RcmlFetcher(HttpClient(limit=4), FetchTimeouts(2.0, 2.0, 2.0))

    async def token(_account: str) -> str:
        return "t" * 32

    outbox = CallbackOutbox(store, fetcher, token, CallbacksConfig(retry_initial=0.05))
    outbox.start()
    return outbox, store


async def _close(outbox: CallbackOutbox, store: SqliteStore) -> None:
    await outbox.stop(2.0)
    await outbox.fetcher._client.close()
    await store.close()


def _record(sid: str) -> CallRecord:
    return CallRecord(
        sid, "AC1", None, "a", "b", "inbound", "ringing", "exact", 1.0, None, None, None, 180
    )


async def _until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_events_wait_for_their_commit(tmp_path: Path, receiver: Receiver) -> None:
    outbox, store = await _outbox(tmp_path / "db")
    real_write = store.write_journal
    failures = 3

    async def flaky(*args: object) -> list[int]:
        nonlocal failures
        if failures:
            failures -= 1
            raise StoreError("disk full")
        return await real_write(*args)  # type: ignore[arg-type]

    store.write_journal = flaky  # type: ignore[method-assign]
    try:
        params = {"CallSid": "CA1", "SequenceNumber": "0"}
        event = outbox.event("CA1", "AC1", 0, receiver.url, "POST", params)
        committed = outbox.commit(call=_record("CA1"), events=[event])
        await asyncio.sleep(0.2)  # the first writes fail: nothing may go out yet
        assert receiver.seen == [] and not committed.done()
        await asyncio.wait_for(committed, 5)
        await _until(lambda: receiver.seen)
        assert receiver.seen == [("CA1", "0")]
        assert (await store.get_call("CA1")).status == "ringing"
    finally:
        await _close(outbox, store)


async def test_recovered_events_go_before_new_ones(tmp_path: Path, receiver: Receiver) -> None:
    outbox, store = await _outbox(tmp_path / "db")
    # an earlier run left sequence 0 undelivered (the receiver was never reached)
    await store.enqueue_callbacks(
        [outbox.event("CA1", "AC1", 0, receiver.url, "POST", {"CallSid": "CA1",
                                                              "SequenceNumber": "0"})]
    )  # fmt: skip
    outbox.adopt(await store.pending_callbacks(0, 100))
    params = {"CallSid": "CA1", "SequenceNumber": "1"}
    await outbox.commit(events=[outbox.event("CA1", "AC1", 1, receiver.url, "POST", params)])
    try:
        await _until(lambda: len(receiver.seen) == 2)
        assert receiver.seen == [("CA1", "0"), ("CA1", "1")]
        await asyncio.sleep(0.2)
        assert len(receiver.seen) == 2  # recovery did not pick the new event up a second time
    finally:
        await _close(outbox, store)


class FailingReceiver(Receiver):
    """Answers 500 to everything (a receiver that is up but broken)."""

    async def _cb(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.seen.append((str(form["CallSid"]), str(form["SequenceNumber"])))
        return web.Response(status=500, text="broken")


async def _expiring_outbox(path: Path, max_age: float) -> tuple[CallbackOutbox, SqliteStore]:
    outbox, store = await _outbox(path)
    outbox.config = CallbacksConfig(retry_initial=0.05, retry_max=0.1, max_age=max_age)
    return outbox, store


def _expired_total() -> float:
    return metrics.REGISTRY.get_sample_value("rcmlrouter_callbacks_expired_total") or 0.0


def _oldest_age() -> float:
    return metrics.REGISTRY.get_sample_value("rcmlrouter_callbacks_oldest_age_seconds") or 0.0


async def test_an_undeliverable_event_is_given_up_after_max_age(tmp_path: Path) -> None:
    receiver = FailingReceiver()
    await receiver.start()
    outbox, store = await _expiring_outbox(tmp_path / "db", max_age=0.6)
    expired_before = _expired_total()
    try:
        events = [
            outbox.event("CA1", "AC1", n, receiver.url, "POST", {"CallSid": "CA1",
                                                                  "SequenceNumber": str(n)})
            for n in (0, 1)
        ]  # fmt: skip
        started = asyncio.get_running_loop().time()
        await outbox.commit(events=events)
        await asyncio.sleep(0.3)
        assert 0.2 < _oldest_age() < 1.0 and outbox.pending == 2
        assert {seq for _, seq in receiver.seen} == {"0"}  # in order: 1 waits for 0
        await _until(lambda: ("CA1", "1") in receiver.seen)
        # 0 was retried until it was max_age old, then given up; 1 went on at once
        assert asyncio.get_running_loop().time() - started == pytest.approx(0.6, abs=0.25)
        assert receiver.seen.count(("CA1", "0")) >= 3
        await _until(lambda: outbox.pending == 0)
        assert _expired_total() - expired_before == 2
        assert _oldest_age() == 0.0
        await asyncio.sleep(0.2)  # the marks are batched every 50 ms
        assert await store.pending_callbacks(0, 10) == []  # removed from the outbox
        notes = (await store.list_notifications("AC1", 0, 10)).items
        assert sorted(n.error_code for n in notes) == [15003, 15003]
        assert all(n.call_sid == "CA1" and n.request_url == receiver.url for n in notes)
        assert "given up after" in notes[0].message and "callbacks.max_age" in notes[0].message
    finally:
        await _close(outbox, store)
        assert receiver.runner is not None
        await receiver.runner.cleanup()


async def test_a_recovered_event_older_than_max_age_gets_one_last_attempt(
    tmp_path: Path, receiver: Receiver
) -> None:
    outbox, store = await _expiring_outbox(tmp_path / "db", max_age=60.0)
    old = outbox.event("CA1", "AC1", 0, receiver.url.replace("/cb", "/missing"), "POST",
                       {"CallSid": "CA1", "SequenceNumber": "0"})  # fmt: skip
    await store.enqueue_callbacks([dataclasses.replace(old, created_at=old.created_at - 3600)])
    fresh = outbox.event("CA1", "AC1", 1, receiver.url, "POST",
                         {"CallSid": "CA1", "SequenceNumber": "1"})  # fmt: skip
    expired_before = _expired_total()
    try:
        outbox.adopt(await store.pending_callbacks(0, 100))
        await outbox.commit(events=[fresh])
        await _until(lambda: receiver.seen == [("CA1", "1")])  # 404 once, given up, then 1
        assert _expired_total() - expired_before == 1
    finally:
        await _close(outbox, store)


class FlakyReceiver(Receiver):
    """Answers 500 to the first ``failures`` requests, then 200."""

    failures = 2

    async def _cb(self, request: web.Request) -> web.Response:
        if self.failures:
            self.failures -= 1
            return web.Response(status=500)
        return await super()._cb(request)


async def test_a_receiver_that_recovers_before_max_age_gets_the_event(tmp_path: Path) -> None:
    receiver = FlakyReceiver()
    await receiver.start()
    outbox, store = await _expiring_outbox(tmp_path / "db", max_age=30.0)
    expired_before = _expired_total()
    try:
        params = {"CallSid": "CA1", "SequenceNumber": "0"}
        await outbox.commit(events=[outbox.event("CA1", "AC1", 0, receiver.url, "POST", params)])
        await _until(lambda: receiver.seen == [("CA1", "0")])
        assert receiver.failures == 0 and _expired_total() == expired_before
        attempts = outbox.attempts.of_call("CA1")  # what the console's call page shows
        assert attempts[-1].error is None and attempts[-1].attempt == len(attempts) > 1
        assert [a.error for a in attempts[:-1]] == ["HTTP 500", "HTTP 500"]
        assert outbox.attempts.of_call("CA2") == []
    finally:
        await _close(outbox, store)
        assert receiver.runner is not None
        await receiver.runner.cleanup()
