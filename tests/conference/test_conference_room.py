"""Rooms with real RTP: three phones, each its own tone; who hears whom, mute, hold, kick, the end,
and the events in order. The daemon side is real (media sessions, the clock, the mixer, the
store); the phones are UDP sockets in the test."""

from __future__ import annotations

import asyncio
import time
import wave
from typing import Any

import numpy as np
import pytest
from conference_harness import Outbox, dominant_frequencies, open_call, open_phone, rms

from rcmlrouter.conference.events import StatusCallback
from rcmlrouter.conference.participant import Mode, Participant, Settings
from rcmlrouter.conference.recording import RecordingSpace
from rcmlrouter.conference.registry import ConferenceRegistry, JoinRequest
from rcmlrouter.conference.room import ConferenceFullError, RoomOptions
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.store.ids import new_sid

AC = "AC" + "1" * 32
TONES = (400, 700, 1100)
ALL = StatusCallback(
    "http://127.0.0.1:9/cb", "POST", ("start", "end", "join", "leave", "mute", "hold")
)


async def listen(phones: list[Any], seconds: float = 0.8) -> list[set[int]]:
    await asyncio.sleep(0.2)  # settle
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    return [dominant_frequencies(p.heard_between(t0, time.monotonic())) for p in phones]


async def three_in_a_room(
    store: Any, clock: MediaClock, outbox: Outbox, settings: dict[int, dict[str, Any]] | None = None
) -> tuple[ConferenceRegistry, list[Any], list[Participant]]:
    settings = settings or {}
    registry = ConferenceRegistry(store, outbox, clock, "node-a")  # type: ignore[arg-type]
    registry.start()
    phones = [
        await open_phone(f, codec) for f, codec in zip(TONES, ("PCMU", "PCMA", "PCMU"), strict=True)
    ]
    participants = []
    request = JoinRequest(AC, "room", ALL, RoomOptions(max_participants=3))
    for index, phone in enumerate(phones):
        session = await open_call(phone, clock, keepalive=1.0)
        extra = settings.get(index, {})
        participant = Participant(new_sid("CA"), session, Settings(beep="false", **extra))
        await registry.join(request, participant)
        participants.append(participant)
    return registry, phones, participants


async def test_each_hears_the_other_two_never_itself(store: Any, clock: MediaClock) -> None:
    outbox = Outbox()
    registry, phones, people = await three_in_a_room(store, clock, outbox)
    heard = await listen(phones)
    for index, tones in enumerate(heard):
        others = {t for i, t in enumerate(TONES) if i != index}
        assert others <= tones, (index, tones)
        assert TONES[index] not in tones, (index, tones)
    assert all(p.mode is Mode.MIX for p in people)

    # mute: the muted one's tone leaves the others' mix; it still hears them
    sid = people[0].call_sid
    conference_sid = next(iter(registry._by_sid))
    assert registry.update_participant(conference_sid, sid, muted=True) is not None
    heard = await listen(phones)
    assert 400 not in heard[1] and 400 not in heard[2] and {700, 1100} <= heard[0]

    # hold: neither hears nor is heard
    registry.update_participant(conference_sid, people[1].call_sid, hold=True)
    assert people[1].mode is Mode.HOLD
    heard = await listen(phones)
    assert 700 not in heard[2] and 700 not in heard[0]
    assert 1100 not in heard[1] and 400 not in heard[1]

    # kick: out of the room, its call goes on; the others stay
    assert registry.kick(conference_sid, people[2].call_sid)
    assert people[2].gone.result() == "kicked"
    assert registry.room(conference_sid) is not None

    registry.end(conference_sid)
    assert all(p.gone.done() for p in people)
    assert outbox.names() == [
        "participant-join", "participant-join", "conference-start", "participant-join",
        "participant-mute", "participant-hold", "participant-leave",
        "participant-leave", "participant-leave", "conference-end",
    ]  # fmt: skip
    assert [int(e["SequenceNumber"]) for e in outbox.events] == list(range(10))
    assert outbox.events[-1]["ReasonConferenceEnded"] == "conference-ended-via-api"
    await registry.stop()
    record = await store.get_conference(conference_sid)
    assert record.status == "completed" and record.node_id == "node-a"
    rows = await store.list_participants(conference_sid, None, 0, 10)
    assert [p.status for p in rows.items] == ["completed"] * 3
    assert [p.muted for p in rows.items] == [True, False, False]
    for phone in phones:
        phone.stop()


async def test_end_conference_on_exit_ends_it_for_all(store: Any, clock: MediaClock) -> None:
    outbox = Outbox()
    registry, phones, people = await three_in_a_room(
        store, clock, outbox, {0: {"end_conference_on_exit": True}}
    )
    conference_sid = next(iter(registry._by_sid))
    room = registry.room(conference_sid)
    assert room is not None
    room.leave(people[0].call_sid, "hangup")
    assert [p.gone.result() for p in people] == ["hangup", "conference-ended", "conference-ended"]
    assert outbox.events[-1]["StatusCallbackEvent"] == "conference-end"
    assert (
        outbox.events[-1]["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    )
    assert outbox.events[-1]["CallSidEndingConference"] == people[0].call_sid
    assert len(registry) == 0 and len(registry.engine) == 0
    # every session is back on its own clock
    assert not any(p.session.lent for p in people)
    await registry.stop()
    for phone in phones:
        phone.stop()


async def test_waiting_until_a_starter_joins_and_one_alone_costs_the_mixer_nothing(
    store: Any, clock: MediaClock
) -> None:
    outbox = Outbox()
    registry = ConferenceRegistry(store, outbox, clock, "node-a")  # type: ignore[arg-type]
    registry.start()
    phones = [await open_phone(f) for f in TONES[:2]]
    sessions = [await open_call(p, clock, keepalive=1.0) for p in phones]
    request = JoinRequest(AC, "wait", ALL, RoomOptions(max_participants=2))
    first = Participant(new_sid("CA"), sessions[0], Settings(start_conference_on_enter=False))
    room = await registry.join(request, first)
    assert first.mode is Mode.WAIT and len(registry.engine) == 0
    await asyncio.sleep(0.5)
    assert len(clock) == 0  # a lone, quiet caller left the clock (silence suppression)
    second = Participant(new_sid("CA"), sessions[1], Settings(beep="false"))
    await registry.join(request, second)
    assert room.started and first.mode is Mode.MIX and len(registry.engine) == 1
    third = Participant(new_sid("CA"), sessions[1], Settings())
    with pytest.raises(ConferenceFullError):
        await registry.join(request, third)
    room.leave(second.call_sid)
    assert first.mode is Mode.ALONE and len(registry.engine) == 0
    room.leave(first.call_sid)
    assert outbox.names()[-1] == "conference-end"
    assert outbox.events[-1]["ReasonConferenceEnded"] == "last-participant-left"
    # the name again at once (the ended row may not be written yet): a new room, no second end
    again = await registry.join(request, Participant(new_sid("CA"), sessions[0], Settings()))
    assert again.sid != room.sid and outbox.names().count("conference-end") == 1
    again.end("conference-ended-via-api")
    await registry.stop()
    for phone in phones:
        phone.stop()


async def test_a_coach_is_heard_only_by_the_one_coached_and_the_mix_is_recorded(
    store: Any, clock: MediaClock, tmp_path: Any
) -> None:
    outbox = Outbox()
    space = RecordingSpace(tmp_path / "recordings", store.add_recording)
    registry = ConferenceRegistry(store, outbox, clock, "node-a", space)  # type: ignore[arg-type]
    registry.start()
    phones = [await open_phone(f) for f in TONES]
    sessions = [await open_call(p, clock) for p in phones]
    request = JoinRequest(AC, "coached", None, RoomOptions(record=True))
    agent = Participant(new_sid("CA"), sessions[0], Settings(beep="false"))
    customer = Participant(new_sid("CA"), sessions[1], Settings(beep="false"))
    coach = Participant(new_sid("CA"), sessions[2], Settings(beep="false", coach=agent.call_sid))
    for participant in (agent, customer, coach):
        room = await registry.join(request, participant)
    heard = await listen(phones)
    assert heard[0] >= {700, 1100} and 400 not in heard[0]  # the agent hears both
    assert 400 in heard[1] and 1100 not in heard[1]  # the customer never hears the coach
    assert heard[2] >= {400, 700}  # the coach hears everyone
    room.end("conference-ended-via-api")
    await registry.stop()
    await asyncio.sleep(0.1)
    record = await store.get_conference(room.sid)
    assert record.recording_sid is not None
    recording = await store.get_recording(record.recording_sid)
    assert recording.source == "Conference" and recording.duration > 0.5
    path = tmp_path / "recordings" / AC / f"{recording.sid}.wav"
    with wave.open(str(path)) as source:
        mixed = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    assert {400, 700} <= dominant_frequencies(mixed[-8000:])
    assert rms(mixed[-8000:]) > 1000
    for phone in phones:
        phone.stop()


async def test_an_earlier_runs_conference_ends_at_start_with_its_events(
    store: Any, clock: MediaClock
) -> None:
    from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord

    now = time.time()
    left = ConferenceRecord(
        new_sid("CF"), AC, "crashed", "in-progress", "node-a", now, now,
        status_callback="http://127.0.0.1:9/cb", status_callback_event="start end leave",
        callback_sequence=4,
    )  # fmt: skip
    caller = ParticipantRecord(left.sid, new_sid("CA"), AC, "connected", False, False, True,
                               False, now, now)  # fmt: skip
    await store.save_conference_rows([left], [caller])
    outbox = Outbox()
    registry = ConferenceRegistry(store, outbox, clock, "node-a")  # type: ignore[arg-type]
    registry.start()
    assert await registry.recover() == 1
    assert outbox.names() == ["participant-leave", "conference-end"]
    assert [e["SequenceNumber"] for e in outbox.events] == ["4", "5"]
    assert outbox.events[0]["CallSid"] == caller.call_sid
    await registry.stop()
    assert (await store.get_conference(left.sid)).status == "completed"
    assert (await store.get_participant(left.sid, caller.call_sid)).status == "completed"
    # the name is free again: a new room takes it
    phone = await open_phone(400)
    session = await open_call(phone, clock)
    registry = ConferenceRegistry(store, outbox, clock, "node-a")  # type: ignore[arg-type]
    registry.start()
    request = JoinRequest(AC, "crashed", None, RoomOptions())
    room = await registry.join(request, Participant(new_sid("CA"), session, Settings()))
    assert room.sid != left.sid
    room.end("conference-ended-via-api")
    await registry.stop()
    phone.stop()


async def test_key_presses_are_not_mixed(store: Any, clock: MediaClock) -> None:
    from rcmlrouter.media import dtmf

    outbox = Outbox()
    registry, phones, people = await three_in_a_room(store, clock, outbox)
    await asyncio.sleep(0.3)
    phones[0].frequency = 0.0  # only key presses from the first caller from now on
    phones[1].frequency = phones[2].frequency = 0.0
    for digit in "1590":
        for packet in dtmf.event_packets(digit, 200):
            phones[0].keys.append(packet)
    t0 = time.monotonic()
    await asyncio.sleep(1.2)
    heard = [p.heard_between(t0 + 0.1, time.monotonic()) for p in phones[1:]]
    assert all(rms(pcm) < 50 for pcm in heard), [rms(pcm) for pcm in heard]  # silence, no tones
    digits = await people[0].session.collect_digits(4, "", 0.1)
    assert digits == "1590"  # the keys reached the first caller's own DTMF receiver
    conference_sid = next(iter(registry._by_sid))
    registry.end(conference_sid)
    await registry.stop()
    for phone in phones:
        phone.stop()
