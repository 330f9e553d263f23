"""<Dial><Conference> with three pjsua2 callers (an independent SIP and RTP stack) against the
real daemon: each plays its own tone and records what it hears.

One run, in phases on the wall clock (each caller reports when its recording began, so a phase
maps to a stretch of its WAV): all three hear the other two and never themselves; a mute over
the API removes that voice; a hold plays the hold RCML to the held one and takes it out of the
mix; a kick (DELETE) sends that caller on to its next verb; the caller with
``endConferenceOnExit`` hangs up and the conference ends for the last one, whose ``<Dial
action>`` runs. The statusCallback events arrive in order; the records are in the API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.conference_callers import Caller, near, peaks, wav_bytes
from support.webhooks import Reply, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "pjsua_media.py"
RATE = 8000
TONES = {"A": 440, "B": 700, "C": 1100}
EVENTS = "start end join leave mute hold"


def participants(client: Any, conference_sid: str) -> list[dict[str, Any]]:
    response = client.get(f"/Conferences/{conference_sid}/Participants.json")
    assert response.status_code == 200, response.text
    return list(response.json()["participants"])


def test_three_callers_in_one_conference(daemon, webhooks, tmp_path, dial) -> None:
    room = f"room-{dial}"
    callback = webhooks.route(f"/conf-events/{dial}", Reply("", 204))
    conference = (
        f'<Conference beep="false" waitUrl="" statusCallback="{callback}" '
        f'statusCallbackEvent="{EVENTS}" record="record-from-start"'
    )
    tone = {
        hz: webhooks.route(f"/audio/{dial}/{hz}.wav", Reply(wav_bytes(hz, 3.0), 200, "audio/wav"))
        for hz in (1500, 1800, 2200)
    }
    webhooks.route(f"/hold/{dial}", rcml(f'<Play loop="0">{tone[1500]}</Play>'))
    after_b = webhooks.route(f"/after/{dial}/B", rcml(f'<Play loop="0">{tone[2200]}</Play>'))
    documents = {
        "A": rcml(f'<Dial>{conference} endConferenceOnExit="true">{room}</Conference></Dial>'),
        "B": rcml(f'<Dial action="{after_b}">{conference}>{room}</Conference></Dial>'),
        "C": rcml(
            f"<Dial>{conference}>{room}</Conference></Dial>",
            f"<Play>{tone[1800]}</Play>",
            "<Hangup/>",
        ),
    }
    numbers = {}
    for index, (name, document) in enumerate(documents.items()):
        numbers[name] = f"{dial}{index}"
        url = webhooks.route(f"/voice/{dial}/{name}", document)
        daemon.create_number(PhoneNumber=numbers[name], isSIP="true", VoiceUrl=url)
    uri = f"sip:{{}}@127.0.0.1:{daemon.sip_port}"
    callers = {
        name: Caller(
            name, uri.format(numbers[name]), tmp_path, 13.0 if name == "A" else 19.0, TONES[name]
        )
        for name in documents
    }
    try:
        _phases(daemon, webhooks, callers, room, dial)
    finally:
        for caller in callers.values():
            if caller.proc.poll() is None:
                caller.proc.kill()


def _phases(daemon, webhooks, callers, room, dial) -> None:
    with daemon.api() as client:
        # everyone in: the conference is in the API with three connected participants
        deadline = time.monotonic() + 15
        conference_sid, people = "", []
        while time.monotonic() < deadline:
            listed = client.get("/Conferences.json", params={"FriendlyName": room}).json()
            if listed["conferences"]:
                conference_sid = listed["conferences"][0]["sid"]
                people = [
                    p for p in participants(client, conference_sid) if p["status"] == "connected"
                ]
                if len(people) == 3:
                    break
            time.sleep(0.2)
        assert len(people) == 3, people
        by_caller = _match_callers(webhooks, dial, people)
        t1 = time.time()
        time.sleep(2.7)
        client.post(f"/Conferences/{conference_sid}/Participants/{by_caller['A']}.json",
                    data={"Muted": "true"}).raise_for_status()  # fmt: skip
        t2 = time.time()
        time.sleep(2.0)
        client.post(f"/Conferences/{conference_sid}/Participants/{by_caller['A']}.json",
                    data={"Muted": "false"}).raise_for_status()  # fmt: skip
        held = client.post(
            f"/Conferences/{conference_sid}/Participants/{by_caller['B']}.json",
            data={"Hold": "true", "HoldUrl": webhooks.url(f"/hold/{dial}"), "HoldMethod": "GET"},
        )
        assert held.status_code == 200 and held.json()["hold"] is True, held.text
        t3 = time.time()
        time.sleep(2.8)
        kicked = client.delete(f"/Conferences/{conference_sid}/Participants/{by_caller['C']}.json")
        assert kicked.status_code == 204, kicked.text
        t4 = time.time()
        time.sleep(2.0)
        gone = client.get(f"/Conferences/{conference_sid}/Participants/{by_caller['C']}.json")
        assert gone.json()["status"] == "completed"
        # A hangs up (endConferenceOnExit): the conference ends, B's action plays 2200 Hz
        ended = webhooks.wait_for(f"/conf-events/{dial}", 11, timeout=15)
        end_at = ended[-1].at
        time.sleep(max(0.0, end_at + 3.2 - time.time()))
        record = client.get(f"/Conferences/{conference_sid}.json").json()
        recording = client.get(f"/Recordings/{record['recording_sid']}.json").json()
        listed = client.get(f"/Conferences/{conference_sid}/Recordings.json").json()
        assert [r["sid"] for r in listed["recordings"]] == [record["recording_sid"]]
        audio = client.get(f"/Recordings/{record['recording_sid']}.wav")
    assert recording["source"] == "Conference" and float(recording["duration"]) > 8, recording
    mixed = np.frombuffer(audio.content[44:], dtype="<i2")
    assert all(near(peaks(mixed), hz) for hz in TONES.values())  # the room's mix: all three
    results = {name: caller.hang_up() for name, caller in callers.items()}  # B: all heard
    assert all(r["confirmed_at"] is not None for r in results.values()), results
    heard = {name: caller.window(t1 + 0.7, t1 + 2.7) for name, caller in callers.items()}
    for name, tones in heard.items():
        for other, hz in TONES.items():
            assert near(tones, hz) == (other != name), (name, tones)
    muted = {name: callers[name].window(t2 + 0.6, t2 + 2.0) for name in TONES}
    assert not near(muted["B"], 440) and not near(muted["C"], 440), muted
    assert near(muted["A"], 700) and near(muted["A"], 1100), muted  # a muted caller still hears
    on_hold = {name: callers[name].window(t3 + 1.0, t3 + 2.8) for name in TONES}
    assert near(on_hold["B"], 1500) and not near(on_hold["B"], 440), on_hold
    assert not near(on_hold["A"], 700) and near(on_hold["A"], 1100), on_hold
    assert near(callers["C"].window(t4 + 0.6, t4 + 2.0), 1800)  # C's next verb
    after = callers["B"].window(end_at + 1.0, end_at + 3.0)
    assert near(after, 2200) and not near(after, 1100), after  # B's <Dial action>
    action = webhooks.requests(f"/after/{dial}/B")[0].params
    assert action["DialCallStatus"] == "completed" and action["ConferenceSid"] == conference_sid
    names = [r.params["StatusCallbackEvent"] for r in ended]
    assert names == [
        "participant-join", "participant-join", "conference-start", "participant-join",
        "participant-mute", "participant-unmute", "participant-hold", "participant-leave",
        "participant-leave", "participant-leave", "conference-end",
    ], names  # fmt: skip
    assert [int(r.params["SequenceNumber"]) for r in ended] == list(range(11))
    leaving = [
        r.params["CallSid"] for r in ended if r.params["StatusCallbackEvent"].endswith("leave")
    ]
    assert leaving == [by_caller["C"], by_caller["A"], by_caller["B"]]
    assert (
        ended[-1].params["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    )
    assert (
        record["status"] == "completed" and record["call_sid_ending_conference"] == by_caller["A"]
    )


def _match_callers(webhooks, dial, people) -> dict[str, str]:
    """Each caller's CallSid, from the voice webhook it caused."""
    sids = {}
    for name in TONES:
        request = webhooks.requests(f"/voice/{dial}/{name}")[0]
        sids[name] = request.params["CallSid"]
    assert set(sids.values()) == {p["call_sid"] for p in people}
    return sids
