"""CallbackOutbox as the journal: nothing is delivered before its commit; order per call;
what a crash left undelivered is recovered ahead of new events. Real SQLite, real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.config import CallbacksConfig
from rcmlrouter.errors import StoreError
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher, create_webhook_session
from rcmlrouter.store.base import CallRecord
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
    session = create_webhook_session(pool_size=4)
    fetcher = RcmlFetcher(session, FetchTimeouts(2.0, 2.0, 2.0))

    async def token(_account: str) -> str:
        return "t" * 32

    outbox = CallbackOutbox(store, fetcher, token, CallbacksConfig(retry_initial=0.05))
    outbox.start()
    return outbox, store


async def _close(outbox: CallbackOutbox, store: SqliteStore) -> None:
    await outbox.stop(2.0)
    await outbox.fetcher._session.close()
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
    await outbox.recover()
    params = {"CallSid": "CA1", "SequenceNumber": "1"}
    await outbox.commit(events=[outbox.event("CA1", "AC1", 1, receiver.url, "POST", params)])
    try:
        await _until(lambda: len(receiver.seen) == 2)
        assert receiver.seen == [("CA1", "0"), ("CA1", "1")]
        await asyncio.sleep(0.2)
        assert len(receiver.seen) == 2  # recovery did not pick the new event up a second time
    finally:
        await _close(outbox, store)
