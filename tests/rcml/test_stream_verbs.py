"""<Connect>, <Start>, <Stop> with <Stream>: parsing and the executor's semantics (fake ports)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from test_execute import Documents, FakeLeg

from rcmlrouter.errors import RcmlParseError
from rcmlrouter.rcml.execute import RcmlExecutor
from rcmlrouter.rcml.model import Connect, Document, Hangup, Pause, Start, Stop, Stream
from rcmlrouter.rcml.parse import parse_rcml
from rcmlrouter.rcml.ports import StreamOutcome

BASE = "https://app.example.com/voice/doc.xml"


def test_connect_start_stop_parse_with_twilios_attributes() -> None:
    document = parse_rcml(
        b"""<Response>
        <Connect action="/after" method="GET">
          <Stream url="wss://agent.example.com/ws?x=1" name="bot" statusCallback="/status"
                  statusCallbackMethod="get">
            <Parameter name="lang" value="fr"/><Parameter name="empty" value=""/>
          </Stream>
        </Connect>
        <Start><Stream url="ws://127.0.0.1:9000/" track="both_tracks"/></Start>
        <Stop><Stream name="bot"/></Stop>
        </Response>""",
        BASE,
    )
    assert document.verbs == (
        Connect(
            Stream(
                "wss://agent.example.com/ws?x=1",
                "bot",
                "inbound_track",
                "https://app.example.com/status",
                "GET",
                (("lang", "fr"), ("empty", "")),
            ),
            "https://app.example.com/after",
            "GET",
        ),
        Start(Stream("ws://127.0.0.1:9000/", track="both_tracks")),
        Stop("bot"),
    )


def test_twiml_written_by_the_twilio_sdk_parses() -> None:
    from twilio.twiml.voice_response import Connect as SdkConnect
    from twilio.twiml.voice_response import Start as SdkStart
    from twilio.twiml.voice_response import Stop as SdkStop
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    connect = SdkConnect(action="https://app.example.com/after")
    stream = connect.stream(url="wss://agent.example.com/ws", name="bot")
    stream.parameter(name="lang", value="fr")
    response.append(connect)
    start = SdkStart()
    start.stream(url="wss://agent.example.com/fork", track="both_tracks", name="fork")
    response.append(start)
    stop = SdkStop()
    stop.stream(name="fork")
    response.append(stop)
    document = parse_rcml(str(response).encode(), BASE)
    assert document.verbs == (
        Connect(
            Stream("wss://agent.example.com/ws", "bot", parameters=(("lang", "fr"),)),
            "https://app.example.com/after",
        ),
        Start(Stream("wss://agent.example.com/fork", "fork", "both_tracks")),
        Stop("fork"),
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<Connect/>", "exactly one <Stream>"),
        ("<Connect><Say>x</Say></Connect>", "not allowed inside <Connect>"),
        ('<Start><Stream url="https://x/"/></Start>', "ws:// or wss://"),
        ('<Start><Stream url="wss:///nohost"/></Start>', "ws:// or wss://"),
        ('<Start><Stream url="wss://x/" track="sideways"/></Start>', "track"),
        ("<Stop><Stream/></Stop>", "name: required"),
        ('<Start><Stream url="wss://x/"><Say>a</Say></Stream></Start>', "not allowed"),
        ('<Start><Stream url="wss://x/"><Parameter value="v"/></Stream></Start>', "Parameter"),
    ],
)
def test_bad_stream_verbs_are_refused(body: str, problem: str) -> None:
    with pytest.raises(RcmlParseError, match=problem):
        parse_rcml(f"<Response>{body}</Response>".encode(), BASE)


class FakeStreams:
    def __init__(self, outcome: StreamOutcome) -> None:
        self.outcome = outcome
        self.calls: list[str] = []

    async def connect(self, stream: Stream) -> StreamOutcome:
        self.calls.append(f"connect {stream.url}")
        return self.outcome

    async def start(self, stream: Stream) -> None:
        self.calls.append(f"start {stream.name}")

    async def stop(self, name: str) -> None:
        self.calls.append(f"stop {name}")


async def run(
    document: Document, streams: FakeStreams | None, source: Documents | None = None
) -> tuple[FakeLeg, list[str]]:
    leg, notes = FakeLeg(), []
    executor = RcmlExecutor(
        leg, source or Documents({}), lambda code, msg, *_: notes.append(f"{code} {msg}"),
        streams=streams,
    )  # fmt: skip
    await executor.run(document)
    return leg, notes


async def test_connect_answers_waits_then_goes_on() -> None:
    streams = FakeStreams(StreamOutcome({"StreamSid": "MZ1"}))
    connect = Connect(Stream("wss://a/"))
    leg, _ = await run(Document((connect, Pause(1))), streams)
    assert streams.calls == ["connect wss://a/"]
    assert leg.events == ["answer", "pause 1", "hangup"]


async def test_connect_action_gets_the_outcome_and_replaces_the_document() -> None:
    params: list[Mapping[str, str]] = []

    class Recording(Documents):
        async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
            params.append(extra)
            return await super().fetch(url, method, extra)

    source = Recording({"https://a/next": Document((Pause(2),))})
    streams = FakeStreams(StreamOutcome({"StreamSid": "MZ1", "StreamEvent": "stream-stopped"}))
    connect = Connect(Stream("wss://a/"), action="https://a/next")
    leg, _ = await run(Document((connect, Pause(9))), streams, source)
    assert params == [{"StreamSid": "MZ1", "StreamEvent": "stream-stopped"}]
    assert leg.events == ["answer", "pause 2", "hangup"]


async def test_connect_whose_call_ended_ends_the_document() -> None:
    streams = FakeStreams(StreamOutcome(call_ended=True))
    connect = Connect(Stream("wss://a/"), action="https://a/next")
    leg, _ = await run(Document((connect, Pause(9))), streams)
    assert leg.events == ["answer", "hangup"]


async def test_start_and_stop_go_on_at_once() -> None:
    streams = FakeStreams(StreamOutcome())
    verbs = (Start(Stream("wss://a/", name="s")), Pause(1), Stop("s"), Hangup())
    leg, _ = await run(Document(verbs), streams)
    assert streams.calls == ["start s", "stop s"]
    assert leg.events == ["answer", "pause 1", "hangup"]


async def test_a_leg_without_streams_says_so_and_hangs_up() -> None:
    leg, notes = await run(Document((Connect(Stream("wss://a/")), Pause(3))), None)
    assert leg.events == ["answer", "hangup"]
    assert notes == ["12200 <Connect> is not supported on this call; the call was hung up"]
