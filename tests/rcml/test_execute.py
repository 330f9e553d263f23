"""The RCML executor's verb semantics, against a recording fake call leg (pure unit test)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from rcmlrouter.errors import RcmlError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Document, Hangup, Pause, Redirect, Reject, Sms
from rcmlrouter.rcml.ports import MAX_REDIRECTS


class FakeLeg:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.answered = False
        self.rejected = False

    async def answer(self) -> None:
        self.answered = True
        self.events.append("answer")

    def reject(self, status: int, reason: str) -> None:
        self.rejected = True
        self.events.append(f"reject {status}")

    async def hangup(self) -> None:
        self.events.append("hangup")

    async def pause(self, seconds: float) -> None:
        self.events.append(f"pause {seconds:g}")


class Documents:
    def __init__(self, documents: dict[str, Document]) -> None:
        self.documents = documents
        self.fetched: list[str] = []

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        self.fetched.append(url)
        return self.documents[url]


async def run(document: Document, source: Documents | None = None) -> tuple[FakeLeg, list[str]]:
    leg = FakeLeg()
    notes: list[str] = []
    executor = RcmlExecutor(leg, source or Documents({}), lambda code, msg, *_: notes.append(msg))
    await executor.run(document)
    return leg, notes


@pytest.mark.parametrize(("reason", "status"), [("busy", 486), ("rejected", 603), ("x", 603)])
async def test_reject_does_not_answer(reason: str, status: int) -> None:
    leg, _ = await run(Document((Reject(reason), Hangup())))
    assert leg.events == [f"reject {status}"]


async def test_hangup_before_answer_answers_then_hangs_up() -> None:
    leg, _ = await run(Document((Hangup(), Pause(3))))
    assert leg.events == ["answer", "hangup"]


async def test_end_of_document_answers_then_hangs_up() -> None:
    leg, _ = await run(Document(()))
    assert leg.events == ["answer", "hangup"]


async def test_pause_answers_first() -> None:
    leg, _ = await run(Document((Pause(2), Hangup())))
    assert leg.events == ["answer", "pause 2", "hangup"]


async def test_reject_after_answer_hangs_up() -> None:
    leg, _ = await run(Document((Pause(1), Reject("busy"))))
    assert leg.events == ["answer", "pause 1", "hangup"]


async def test_redirect_replaces_the_document() -> None:
    source = Documents({"http://x/next": Document((Pause(1),))})
    leg, _ = await run(Document((Redirect("http://x/next"), Pause(9))), source)
    assert source.fetched == ["http://x/next"]
    assert leg.events == ["answer", "pause 1", "hangup"]


async def test_redirect_loop_is_bounded() -> None:
    loop = Document((Redirect("http://x/loop"),))
    source = Documents({"http://x/loop": loop})
    with pytest.raises(RcmlError, match="redirects"):
        await run(loop, source)
    assert len(source.fetched) == MAX_REDIRECTS


async def test_unsupported_verb_answers_hangs_up_and_notifies() -> None:
    leg, notes = await run(Document((Sms(body="hi"), Pause(5))))  # no SmsChannel here
    assert leg.events == ["answer", "hangup"]
    assert notes and "Sms" in notes[0]
