"""The command channel's wire: every kind of command about a live call, and its answer, survives
the trip between nodes (JSON both ways; version 1 payloads still read); a kind the receiver does
not know is refused with an answer, at once. Then on the test PostgreSQL server: two channels on
one schema play two nodes, a stream command and its result cross, an unknown kind is answered."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
import pytest

from rcmlrouter.call_updates import (
    APPLIED,
    ENDED,
    REFUSED,
    UNKNOWN,
    CallCommand,
    CallUpdate,
    ConferenceEnd,
    ParticipantKick,
    ParticipantUpdate,
    StreamStart,
    StreamStop,
    UpdateResult,
)
from rcmlrouter.cluster.call_commands import (
    MAX_PAYLOAD,
    BadRequest,
    CallCommands,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)
from rcmlrouter.store.postgres import PostgresStore
from support.pg import drop_schema, new_schema_name, schema_url

CALL = "CA" + "c" * 32
ACCOUNT = "AC" + "a" * 32


def trip(payload: dict[str, Any]) -> dict[str, Any]:
    """Through JSON text, as NOTIFY carries it."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    assert len(text.encode()) <= MAX_PAYLOAD
    return dict(json.loads(text))


@pytest.mark.parametrize(
    "command",
    [
        CallUpdate(url="http://x/y", method="GET", status_callback=""),
        StreamStart(ACCOUNT, "wss://agent.example/ws"),
        StreamStart(
            ACCOUNT,
            "ws://127.0.0.1:9/a?b=c",
            "bot",
            "both_tracks",
            "http://cb/",
            "GET",
            (("lang", "fr"), ("quote", 'é "x" <y>')),
        ),
        StreamStop(ACCOUNT, "MZ" + "1" * 32),
        ConferenceEnd(),
        ParticipantUpdate(CALL, muted=True),
        ParticipantUpdate(CALL, hold=False, hold_url="http://hold/", hold_method="POST"),
        ParticipantKick(CALL),
    ],
    ids=["update", "start", "start-full", "stop", "end", "mute", "unhold", "kick"],
)
def test_every_kind_travels_both_ways(command: CallCommand) -> None:
    payload = trip(encode_request("r1", "chan_b", CALL, command))
    assert payload["k"] == "q" and payload["v"] == 2 and payload["c"] == command.kind
    assert decode_request(payload) == ("r1", "chan_b", CALL, command)


def test_an_update_still_reads_as_version_1_both_ways() -> None:
    update = CallUpdate(status="completed")
    v1 = {"k": "q", "id": "r1", "re": "chan_b", "sid": CALL, "u": update.to_wire()}
    assert decode_request(trip(v1)) == ("r1", "chan_b", CALL, update)
    sent = encode_request("r2", "chan_b", CALL, update)  # what a version 1 node reads
    assert CallUpdate.from_wire(sent["u"]) == update and sent["sid"] == CALL
    assert decode_reply({"k": "r", "id": "r2", "o": "applied", "d": ""}) == UpdateResult(APPLIED)


def test_many_long_parameters_go_deflated_under_the_payload_limit() -> None:
    parameters = tuple((f"p{n}", "value " * 80) for n in range(99))
    start = StreamStart(ACCOUNT, "wss://agent.example/ws", parameters=parameters)
    payload = trip(encode_request("r1", "chan_b", CALL, start))
    assert "pz" in payload and "p" not in payload
    assert decode_request(payload)[3] == start


def test_replies_carry_the_result_and_the_refusal_code() -> None:
    described = {"sid": "MZ" + "1" * 32, "name": "bot", "status": "in-progress"}
    row = {"call_sid": CALL, "muted": True, "date_created": 1.5, "label": None, "seq": 3}
    for result in (
        UpdateResult(APPLIED, result=described),
        UpdateResult(APPLIED, result=row),  # a participant's row: JSON values keep their type
        UpdateResult(REFUSED, "more than 4 streams", code=31940),
        UpdateResult(ENDED, "the call is not running"),
    ):
        assert decode_reply(trip(encode_reply("r1", result))) == result
    assert "r" not in encode_reply("r1", UpdateResult(ENDED)) and "e" not in encode_reply(
        "r1", UpdateResult(ENDED)
    )


def test_an_unknown_kind_is_refused_with_an_answer() -> None:
    future = {"k": "q", "v": 3, "id": "r1", "re": "chan_b", "sid": CALL, "c": "stream-pause",
              "p": {"account_sid": ACCOUNT}}  # fmt: skip
    with pytest.raises(BadRequest, match="unknown command kind 'stream-pause'") as refused:
        decode_request(future)
    assert refused.value.reply == ("r1", "chan_b")  # the sender is told, not left waiting
    malformed = {**future, "c": "stream-stop"}  # no ref
    with pytest.raises(BadRequest, match="missing") as bad:
        decode_request(malformed)
    assert bad.value.reply == ("r1", "chan_b")
    with pytest.raises(BadRequest) as anonymous:
        decode_request({"k": "q", "c": "stream-stop"})
    assert anonymous.value.reply is None


# ---- on PostgreSQL --------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseStream:
    """A kind of command from a newer node."""

    ref: str
    kind: ClassVar[str] = "stream-pause"

    def to_wire(self) -> dict[str, Any]:
        return {"ref": self.ref}


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = new_schema_name()
    yield name
    drop_schema(name)


@pytest.fixture
async def channels(schema: str) -> AsyncIterator[tuple[CallCommands, CallCommands, list[Any]]]:
    url = schema_url(schema)
    stores = [await PostgresStore.open(url, node_id=n) for n in ("node-a", "node-b")]
    conn = await asyncpg.connect(url)
    try:
        for node in ("node-a", "node-b"):
            await conn.execute(
                "INSERT INTO nodes (node_id, started_at, heartbeat_at, instance) VALUES "
                "($1, EXTRACT(EPOCH FROM clock_timestamp()), EXTRACT(EPOCH FROM "
                "clock_timestamp()), 'test') ON CONFLICT (node_id) DO UPDATE SET "
                "heartbeat_at = EXCLUDED.heartbeat_at",
                node,
            )
    finally:
        await conn.close()
    applied: list[Any] = []

    async def apply_a(call_sid: str, command: CallCommand) -> UpdateResult:
        applied.append((call_sid, command))
        if isinstance(command, StreamStart):
            return UpdateResult(APPLIED, result={"sid": "MZ" + "2" * 32, "name": "bot"})
        return UpdateResult(REFUSED, "the call has no media of ours to stream", code=21220)

    async def apply_b(call_sid: str, command: CallCommand) -> UpdateResult:
        return UpdateResult(ENDED)

    a = CallCommands(url, stores[0], "node-a")
    b = CallCommands(url, stores[1], "node-b")
    await a.open(apply_a)
    await b.open(apply_b)
    try:
        yield a, b, applied
    finally:
        for node in (a, b):
            await node.stop()
        for store in stores:
            await store.close()


@pytest.mark.postgres
async def test_stream_commands_cross_and_an_unknown_kind_is_answered_at_once(
    channels: tuple[CallCommands, CallCommands, list[Any]],
) -> None:
    a, b, applied = channels
    start = StreamStart(ACCOUNT, "wss://agent.example/ws", "bot")
    started = await b.request("node-a", CALL, start)
    assert started == UpdateResult(APPLIED, result={"sid": "MZ" + "2" * 32, "name": "bot"})
    stopped = await b.request("node-a", CALL, StreamStop(ACCOUNT, "bot"))
    assert (stopped.outcome, stopped.code) == (REFUSED, 21220)
    assert applied == [(CALL, start), (CALL, StreamStop(ACCOUNT, "bot"))]
    began = time.monotonic()
    unknown = await b.request("node-a", CALL, PauseStream("bot"))  # type: ignore[arg-type]
    assert unknown.outcome == UNKNOWN and "stream-pause" in unknown.detail
    assert time.monotonic() - began < 2  # answered, not the reply wait
    assert len(applied) == 2 and a.served == 2
