"""A document redirected from outside (``POST Calls/{CA}``): the executor with a real
:class:`~rcmlrouter.calls.live_call.LiveCall` as its steering, a slow fake leg, real tasks."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping

import pytest

from rcmlrouter.calls.live_call import LiveCall
from rcmlrouter.errors import FetchError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Document, Hangup, Pause
from rcmlrouter.rcml.ports import STEERING, RedirectTarget


class SlowLeg:
    answered = True
    rejected = False

    def __init__(self) -> None:
        self.events: list[str] = []
        self.pausing = asyncio.Event()

    async def answer(self) -> None:
        self.events.append("answer")

    async def hangup(self) -> None:
        self.events.append("hangup")

    async def pause(self, seconds: float) -> None:
        self.events.append(f"pause {seconds:g}")
        self.pausing.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.events.append(f"pause {seconds:g} stopped")
            raise


class Source:
    def __init__(self, documents: Mapping[str, Document], fail: set[str] | None = None) -> None:
        self.documents = documents
        self.fail = fail or set()
        self.fetched: list[tuple[str, dict[str, str]]] = []

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        self.fetched.append((url, dict(extra)))
        if url in self.fail:
            raise FetchError("refused", 11205, url)
        return self.documents[url]


def start(
    document: Document, source: Source, leg: SlowLeg
) -> tuple[LiveCall, asyncio.Task[None], list[str]]:
    live = LiveCall("CA1", inbound=True, status="in-progress")
    notes: list[str] = []

    async def run() -> None:
        await RcmlExecutor(leg, source, lambda code, msg: notes.append(msg)).run(document)

    context = contextvars.copy_context()
    context.run(STEERING.set, live)
    live.task = asyncio.create_task(run(), context=context)
    return live, live.task, notes


async def test_a_redirect_stops_the_running_verb_and_runs_the_new_document() -> None:
    leg = SlowLeg()
    source = Source({"http://x/new": Document((Pause(0.01),))})
    live, task, _ = start(Document((Pause(30), Pause(31))), source, leg)
    await leg.pausing.wait()
    live.redirect(RedirectTarget(url="http://x/new"))
    await asyncio.wait_for(task, 2)
    assert leg.events == ["pause 30", "pause 30 stopped", "pause 0.01", "hangup"]
    assert source.fetched == [("http://x/new", {})]
    assert task.cancelling() == 0  # the redirect's cancellation was taken back


async def test_an_inline_document_needs_no_fetch_and_the_last_redirect_wins() -> None:
    leg = SlowLeg()
    source = Source({})
    live, task, _ = start(Document((Pause(30),)), source, leg)
    await leg.pausing.wait()
    live.redirect(RedirectTarget(document=Document((Pause(0.02), Hangup()))))
    live.redirect(RedirectTarget(document=Document((Hangup(),))))
    await asyncio.wait_for(task, 2)
    assert leg.events == ["pause 30", "pause 30 stopped", "hangup"]
    assert source.fetched == []


async def test_a_redirect_before_any_verb_waits_for_the_first_one() -> None:
    leg = SlowLeg()
    live = LiveCall("CA1", inbound=True)
    live.redirect(RedirectTarget(document=Document((Hangup(),))))  # no task, no verb: kept
    context = contextvars.copy_context()
    context.run(STEERING.set, live)

    async def run() -> None:
        await RcmlExecutor(leg, Source({}), lambda *_: None).run(Document((Pause(30),)))

    await asyncio.wait_for(asyncio.create_task(run(), context=context), 2)
    assert leg.events == ["hangup"]


async def test_the_far_end_hanging_up_during_a_redirect_still_stops_the_call() -> None:
    leg = SlowLeg()
    live, task, _ = start(Document((Pause(30),)), Source({}), leg)
    await leg.pausing.wait()
    live.redirect(RedirectTarget(document=Document((Pause(5),))))
    task.cancel()  # the remote BYE, in the same loop turn
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert leg.events == ["pause 30", "pause 30 stopped"]


async def test_a_failed_redirect_url_goes_to_its_fallback_with_the_error() -> None:
    leg = SlowLeg()
    source = Source({"http://x/fallback": Document((Hangup(),))}, fail={"http://x/bad"})
    live, task, notes = start(Document((Pause(30),)), source, leg)
    await leg.pausing.wait()
    live.redirect(RedirectTarget(url="http://x/bad", fallback_url="http://x/fallback"))
    await asyncio.wait_for(task, 2)
    assert [url for url, _ in source.fetched] == ["http://x/bad", "http://x/fallback"]
    assert source.fetched[1][1] == {"ErrorCode": "11205", "ErrorUrl": "http://x/bad"}
    assert leg.events[-1] == "hangup" and "redirect to http://x/bad failed" in notes[0]


async def test_without_steering_nothing_changes() -> None:
    leg = SlowLeg()
    executor = RcmlExecutor(leg, Source({}), lambda *_: None)
    assert executor.steering is None
    await executor.run(Document((Pause(0.01),)))
    assert leg.events == ["pause 0.01", "hangup"]
