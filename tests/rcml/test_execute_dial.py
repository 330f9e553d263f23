"""<Dial> in the executor: the caller is not answered first; action, no action, transfer."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Dial, DialSip, Document, Hangup, Pause, Reject
from rcmlrouter.rcml.ports import DialOutcome


class DialingLeg:
    def __init__(self, outcome: DialOutcome) -> None:
        self.outcome = outcome
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

    async def dial(self, verb: Dial) -> DialOutcome:
        self.events.append(f"dial {verb.targets[0]}")
        if self.outcome.answered:
            self.answered = True  # the bridge answered the caller with the callee's SDP
        return self.outcome


class Documents:
    def __init__(self, documents: dict[str, Document]) -> None:
        self.documents = documents
        self.fetched: list[tuple[str, dict[str, str]]] = []

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        self.fetched.append((url, dict(extra)))
        return self.documents[url]


SIP = DialSip("sip:bob@127.0.0.1")
ANSWERED = DialOutcome("completed", True, {"DialCallStatus": "completed"})
BUSY = DialOutcome("busy", False, {"DialCallStatus": "busy"})


async def run(
    document: Document, outcome: DialOutcome, source: Documents | None = None
) -> DialingLeg:
    leg = DialingLeg(outcome)
    await RcmlExecutor(leg, source or Documents({}), lambda *_: None).run(document)
    return leg


async def test_answered_dial_without_action_ends_the_call() -> None:
    leg = await run(Document((Dial(targets=(SIP,)), Pause(5))), ANSWERED)
    assert leg.events == [f"dial {SIP}", "hangup"]


async def test_unanswered_dial_without_action_goes_on_unanswered() -> None:
    leg = await run(Document((Dial(targets=(SIP,)), Reject("busy"))), BUSY)
    assert leg.events == [f"dial {SIP}", "reject 486"]


@pytest.mark.parametrize("outcome", [ANSWERED, BUSY])
async def test_action_document_continues_the_call(outcome: DialOutcome) -> None:
    source = Documents({"http://x/after": Document((Pause(1),))})
    dial = Dial(action="http://x/after", targets=(SIP,))
    leg = await run(Document((dial, Pause(9))), outcome, source)
    assert source.fetched == [("http://x/after", dict(outcome.params))]
    answer = [] if outcome.answered else ["answer"]
    assert leg.events == [f"dial {SIP}", *answer, "pause 1", "hangup"]


async def test_a_transfer_document_replaces_the_action() -> None:
    transfer = DialOutcome("completed", True, {}, Document((Pause(2), Hangup())))
    dial = Dial(action="http://x/after", targets=(SIP,))
    source = Documents({})
    leg = await run(Document((dial, Pause(9))), transfer, source)
    assert source.fetched == []
    assert leg.events == [f"dial {SIP}", "pause 2", "hangup"]
