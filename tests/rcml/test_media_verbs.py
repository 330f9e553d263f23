"""The media verbs' decisions (rcml/media_verbs.py) against a fake leg: what plays, what is
posted where, what runs next."""

from __future__ import annotations

from collections.abc import Mapping

from rcmlrouter.errors import MediaError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Document, Gather, GatherChild, Hangup, Pause, Play, Record, Say
from rcmlrouter.rcml.ports import RecordingOutcome

NEXT = Document((Say("next document"),))


class MediaFakeLeg:
    """Plays by name; ``key_during`` is the child at which the caller presses ``keys``."""

    def __init__(self, keys: str = "", key_during: int | None = None) -> None:
        self.events: list[str] = []
        self.answered = False
        self.rejected = False
        self.keys = keys
        self.key_during = key_during
        self.played = 0
        self.recording = RecordingOutcome({"RecordingSid": "RE1", "Digits": ""})

    async def answer(self) -> None:
        self.answered = True
        self.events.append("answer")

    def reject(self, status: int, reason: str) -> None:
        self.rejected = True

    async def hangup(self) -> None:
        self.events.append("hangup")

    async def pause(self, seconds: float) -> None:
        self.events.append(f"pause {seconds:g}")

    async def play(self, verb: GatherChild, *, interruptible: bool = False) -> str | None:
        name = {Say: "say", Play: "play", Pause: "pause"}[type(verb)]
        if isinstance(verb, Play) and verb.url.endswith("404"):
            raise MediaError(f"GET {verb.url}: HTTP 404", 11200, verb.url)
        self.events.append(f"{name}{' (interruptible)' if interruptible else ''}")
        index, self.played = self.played, self.played + 1
        if interruptible and self.key_during == index and self.keys:
            return self.keys[0]
        return None

    async def collect_digits(
        self, num_digits: int, finish_on_key: str, digit_timeout: float
    ) -> str:
        self.events.append(f"collect {num_digits} {finish_on_key!r} {digit_timeout:g}")
        return self.keys.split(finish_on_key)[0] if finish_on_key else self.keys

    async def send_digits(self, digits: str) -> None:
        self.events.append(f"send {digits}")

    async def record(self, verb: Record) -> RecordingOutcome:
        self.events.append(f"record {verb.max_length} {verb.timeout} {verb.play_beep}")
        return self.recording


class Source:
    def __init__(self) -> None:
        self.fetched: list[tuple[str, dict[str, str]]] = []

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        self.fetched.append((url, dict(extra)))
        return NEXT


async def run(leg: MediaFakeLeg, *verbs: object) -> tuple[Source, list[tuple[int, str]]]:
    source, notes = Source(), []
    executor = RcmlExecutor(leg, source, lambda code, msg, *_: notes.append((code, msg)))
    await executor.run(Document(tuple(verbs)))  # type: ignore[arg-type]
    return source, notes


async def test_say_and_play_answer_first_and_play_in_order() -> None:
    leg = MediaFakeLeg()
    await run(leg, Say("hi"), Play("http://x/a.wav", digits="1w2"), Hangup())
    assert leg.events == ["answer", "say", "send 1w2", "play", "hangup"]


async def test_play_digits_alone_sends_them_without_audio() -> None:
    leg = MediaFakeLeg()
    await run(leg, Play("", digits="99"))
    assert leg.events == ["answer", "send 99", "hangup"]


async def test_a_play_that_cannot_be_fetched_is_skipped_with_a_notification() -> None:
    leg = MediaFakeLeg()
    _, notes = await run(leg, Play("http://x/404"), Say("after"))
    assert leg.events == ["answer", "say", "hangup"]
    assert [code for code, _ in notes] == [11200]


async def test_gather_stops_its_prompt_at_a_key_and_posts_the_digits() -> None:
    leg = MediaFakeLeg(keys="42#", key_during=0)
    children = (Say("menu"), Play("http://x/a.wav"), Pause(2))
    gather = Gather(num_digits=None, timeout=3, action="http://x/menu", children=children)
    source, _ = await run(leg, gather, Say("not reached"))
    assert leg.events == ["answer", "say (interruptible)", "collect 0 '#' 3", "say", "hangup"]
    assert source.fetched == [("http://x/menu", {"Digits": "42"})]


async def test_gather_without_digits_goes_on_with_the_next_verb() -> None:
    leg = MediaFakeLeg()
    children = (Play("http://x/a.wav"), Pause(1), Say("b"))
    source, _ = await run(leg, Gather(action="http://x/menu", children=children), Say("next"))
    assert leg.events == [
        "answer",
        "play (interruptible)",
        "pause (interruptible)",
        "say (interruptible)",
        "collect 0 '#' 5",
        "say",
        "hangup",
    ]
    assert source.fetched == []


async def test_gather_without_action_drops_the_digits_and_goes_on() -> None:
    leg = MediaFakeLeg(keys="7", key_during=0)
    source, _ = await run(leg, Gather(num_digits=1, children=(Say("a"),)), Say("next"))
    assert leg.events[-2:] == ["say", "hangup"]
    assert source.fetched == []


async def test_record_posts_to_its_action() -> None:
    leg = MediaFakeLeg()
    record = Record(max_length=30, timeout=2, play_beep=False, action="http://x/rec")
    source, _ = await run(leg, record, Say("not reached"))
    assert leg.events == ["answer", "record 30 2 False", "say", "hangup"]
    assert source.fetched == [("http://x/rec", {"RecordingSid": "RE1", "Digits": ""})]


async def test_record_after_the_caller_hung_up_ends_the_document() -> None:
    leg = MediaFakeLeg()
    leg.recording = RecordingOutcome({"Digits": "hangup"}, caller_hung_up=True)
    source, _ = await run(leg, Record(action="http://x/rec"), Say("not reached"))
    assert leg.events == ["answer", "record 3600 5 True", "hangup"]
    assert source.fetched == []  # the leg delivered the action itself


async def test_record_without_action_goes_on() -> None:
    leg = MediaFakeLeg()
    await run(leg, Record(), Say("next"))
    assert leg.events == ["answer", "record 3600 5 True", "say", "hangup"]
