"""POST Calls answered by pjsua2 (an independent SIP and RTP stack): the called party hears the
call's ``<Play>`` and ``<Say>``, and ``<Gather>`` takes the digits it sends (RFC 4733)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.call_audio import answered, answering, frequency, loud_frames, read_wav, tone_wav
from support.conference_callers import Caller, near, peaks, wav_bytes
from support.daemon import DaemonProcess
from support.sipp_uas import SippUas
from support.webhooks import Reply, WebhookServer, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e
FROM = "+15105555555"
SIP_SCENARIOS = Path(__file__).resolve().parents[1] / "sip" / "scenarios"


@pytest.fixture(scope="module")
def daemon(daemon):  # the module's daemon, with the caller ID the calls use
    daemon.create_number(PhoneNumber=FROM)
    return daemon


def call_pjsua(daemon: DaemonProcess, port: int, **params: str) -> str:
    """POST Calls (Restcomm base) from FROM to the pjsua2 callee on ``port``: the call's sid."""
    to = f"sip:pjsua@127.0.0.1:{port}"
    with daemon.api() as api:
        response = api.post("/Calls.json", data={"To": to, "From": FROM, **params})
    assert response.status_code == 200, response.text
    return str(response.json()["sid"])


def wait_status(daemon: DaemonProcess, path: str, status: str, what: str) -> dict[str, Any]:
    """The record at ``path`` once its status is ``status`` (10 s at most)."""
    deadline = time.monotonic() + 10
    with daemon.api() as api:
        while (record := api.get(path).json())["status"] != status:
            assert time.monotonic() < deadline, what
            time.sleep(0.1)
    return dict(record)


def in_room(name: str) -> str:
    return f'<Dial><Conference beep="false" waitUrl="">{name}</Conference></Dial>'


@dataclass
class Room:
    """A conference with an inbound pjsua2 caller (440 Hz) in it, and a pjsua2 callee (700 Hz)
    that answers on ``port`` and records what it hears to ``heard``."""

    name: str
    inbound: Caller
    callee: subprocess.Popen[str]
    port: int
    heard: Path


@contextlib.contextmanager
def room_with_a_caller(
    daemon: DaemonProcess,
    webhooks: WebhookServer,
    tmp_path: Path,
    name: str,
    number: str,
    seconds: tuple[float, int],
) -> Iterator[Room]:
    """``number`` puts the inbound caller into the room ``name``; the caller hangs up after
    ``seconds[0]``, the callee after ``seconds[1]``; both are killed if still running."""
    url = webhooks.route(f"/voice/{name}", rcml(in_room(name)))
    daemon.create_number(PhoneNumber=number, isSIP="true", VoiceUrl=url)
    uri = f"sip:{number}@127.0.0.1:{daemon.sip_port}"
    inbound = Caller("in", uri, tmp_path, seconds[0], 440)
    procs = [inbound.proc]
    try:
        played = tmp_path / "callee.wav"
        played.write_bytes(wav_bytes(700, 40.0))
        heard = tmp_path / "callee-heard.wav"
        callee, port = answering(
            "--play", str(played), "--record", str(heard), "--seconds", str(seconds[1])
        )
        procs.append(callee)
        yield Room(name, inbound, callee, port, heard)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_api_call_answered_by_pjsua2_hears_play_and_say_and_gather_takes_its_digits(
    daemon, webhooks, tmp_path
) -> None:
    tone = webhooks.route("/audio/api/tone.wav", Reply(tone_wav(1000, 1.0), 200, "audio/wav"))
    action = webhooks.route("/digits/api", rcml("<Hangup/>"))
    document = webhooks.route(
        "/voice/api",
        rcml(
            f"<Play>{tone}</Play>",
            f'<Gather action="{action}" numDigits="2" timeout="5">'
            "<Say>Please enter two digits now.</Say></Gather>",
        ),
    )
    heard = tmp_path / "heard.wav"
    callee, port = answering(
        "--record", str(heard), "--dtmf", "42", "--dtmf-at", "3.5", "--seconds", "20"
    )
    sid = call_pjsua(daemon, port, Url=document)
    outcome = answered(callee)
    assert outcome["confirmed_at"] is not None and outcome["done"], outcome
    [posted] = webhooks.wait_for("/digits/api", 1)
    assert posted.params["Digits"] == "42"
    assert posted.params["CallSid"] == sid and posted.params["Direction"] == "outbound-api"
    pcm = read_wav(heard)
    frames = loud_frames(pcm)
    loud = np.flatnonzero(frames)
    assert loud.size > 0, "pjsua2 heard nothing"
    first = int(loud[0]) * 160
    assert frequency(pcm[first : first + 4000]) == pytest.approx(1000, abs=15)  # the <Play>
    speech = [pcm[i * 160 : i * 160 + 800] for i in loud if i * 160 > first + 9000][::5]
    pitches = {round(frequency(chunk) / 50) for chunk in speech if len(chunk) == 800}
    assert len(pitches) >= 3, pitches  # then speech (<Say>), not a tone
    wait_status(daemon, f"/Calls/{sid}.json", "completed", "the call never completed")


def test_record_true_records_the_called_party_and_posts_the_recording_callback(
    daemon, webhooks, tmp_path
) -> None:
    callback = webhooks.route("/recording/api", Reply("", content_type="text/plain"))
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(600, 6.0))
    callee, port = answering("--play", str(said), "--seconds", "15")
    sid = call_pjsua(
        daemon,
        port,
        Twiml='<Response><Pause length="3"/></Response>',
        Record="true",
        RecordingStatusCallback=callback,
    )
    assert answered(callee)["done"]
    [posted] = webhooks.wait_for("/recording/api", 1)
    params = posted.params
    assert params["CallSid"] == sid and params["RecordingStatus"] == "completed"
    assert params["RecordingSource"] == "OutboundAPI"
    assert 2 <= int(params["RecordingDuration"]) <= 4
    with daemon.api() as api:
        wav = api.get(f"/Recordings/{params['RecordingSid']}.wav")
        assert wav.status_code == 200
        listed = api.get(f"/Calls/{sid}/Recordings.json").json()
    pcm = read_wav(wav.content)
    assert frequency(pcm[8000:16000]) == pytest.approx(600, abs=15)  # the called party's tone
    assert [r["sid"] for r in listed["recordings"]] == [params["RecordingSid"]]


def test_send_digits_reach_the_called_party_as_rfc_4733_events(daemon, tmp_path) -> None:
    callee, port = answering("--seconds", "12")
    call_pjsua(daemon, port, Twiml='<Response><Pause length="2"/></Response>', SendDigits="12w#9")
    outcome = answered(callee)
    assert outcome["done"] and outcome["digits"] == "12#9", outcome


def test_an_api_call_joins_a_conference_and_hears_an_inbound_caller(
    daemon, webhooks, tmp_path
) -> None:
    """``<Dial><Conference>`` on an API call: the called party (pjsua2, 700 Hz) and an inbound
    pjsua2 caller (440 Hz) in one room each hear the other, never themselves."""
    with room_with_a_caller(daemon, webhooks, tmp_path, "api-room", "7707", (9.0, 9)) as room:
        call_pjsua(daemon, room.port, Twiml=f"<Response>{in_room(room.name)}</Response>")
        assert answered(room.callee)["done"]
        room.inbound.finish()
    callee_heard = peaks(read_wav(room.heard)[2 * 8000 : 7 * 8000])
    assert near(callee_heard, 440) and not near(callee_heard, 700), callee_heard
    caller_heard = peaks(read_wav(room.inbound.heard)[3 * 8000 : 7 * 8000])
    assert near(caller_heard, 700) and not near(caller_heard, 440), caller_heard


def test_a_participant_added_by_dialling_out_hears_the_room(daemon, webhooks, tmp_path) -> None:
    """POST Conferences/{CF}/Participants: the dialled pjsua2 callee (700 Hz) joins the room of
    an inbound pjsua2 caller (440 Hz) with its Label; each hears the other, never itself."""
    with (
        room_with_a_caller(daemon, webhooks, tmp_path, "dial-out-room", "7708", (10.0, 8)) as room,
        daemon.api() as api,
    ):
        deadline, conference = time.monotonic() + 10, None
        while conference is None:
            assert time.monotonic() < deadline, "the inbound caller's conference never began"
            found = api.get("/Conferences.json", params={"FriendlyName": room.name}).json()
            running = [c for c in found["conferences"] if c["status"] != "completed"]
            conference = running[0]["sid"] if running else None
            time.sleep(0.2)
        participants = f"/Conferences/{conference}/Participants.json"
        to = f"sip:pjsua@127.0.0.1:{room.port}"
        refused = api.post(participants, data={"To": to, "From": FROM, "EarlyMedia": "true"})
        assert refused.status_code == 400 and "EarlyMedia" in refused.text, refused.text
        lonely = api.post(participants, data={"To": to, "From": FROM, "Coaching": "true"})
        assert lonely.status_code == 400 and "CallSidToCoach" in lonely.text, lonely.text
        added = api.post(
            participants, data={"To": to, "From": FROM, "Label": "agent", "Beep": "false"}
        )
        assert added.status_code == 200, added.text
        body = added.json()
        assert body["status"] == "queued" and body["label"] == "agent", body
        assert body["conference_sid"] == conference
        outcome = answered(room.callee)
        assert outcome["done"], outcome
        listed = api.get(participants).json()["participants"]
        joined = [p for p in listed if p["call_sid"] == body["call_sid"]]
        assert joined and joined[0]["label"] == "agent", listed
        room.inbound.finish()
    agent_heard = peaks(read_wav(room.heard)[2 * 8000 : 6 * 8000])
    assert near(agent_heard, 440) and not near(agent_heard, 700), agent_heard
    wait_status(
        daemon, f"/Conferences/{conference}.json", "completed", "the conference never ended"
    )
    with daemon.api() as api:
        late = api.post(participants, data={"To": to, "From": FROM})
    assert late.status_code == 400 and "ended" in late.text, late.text


@pytest.mark.parametrize("channels", ["mono", "dual"])
def test_record_true_records_both_tracks_mixed_or_on_two_channels(
    daemon, webhooks, tmp_path, channels
) -> None:
    """Twilio's default ``RecordingTrack=both``: the called party (pjsua2, 600 Hz) and what the
    call plays to it (``<Play>``, 1000 Hz) in one file; ``dual``: the called party on the first
    channel, ours on the second."""
    callback = webhooks.route(f"/recording/both/{channels}", Reply("", content_type="text/plain"))
    ours = webhooks.route(
        f"/audio/both/{channels}.wav", Reply(tone_wav(1000, 4.0), 200, "audio/wav")
    )
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(600, 8.0))
    callee, port = answering("--play", str(said), "--seconds", "15")
    call_pjsua(
        daemon,
        port,
        Twiml=f'<Response><Play>{ours}</Play><Pause length="1"/></Response>',
        Record="true",
        RecordingChannels=channels,
        RecordingStatusCallback=callback,
    )
    assert answered(callee)["done"]
    [posted] = webhooks.wait_for(f"/recording/both/{channels}", 1)
    params = posted.params
    assert params["RecordingChannels"] == ("2" if channels == "dual" else "1")
    assert 4 <= int(params["RecordingDuration"]) <= 6
    with daemon.api() as api:
        wav = api.get(f"/Recordings/{params['RecordingSid']}.wav")
        assert wav.status_code == 200
        resource = api.get(f"/Recordings/{params['RecordingSid']}.json").json()
    assert resource["channels"] == (2 if channels == "dual" else 1)
    with wave.open(io.BytesIO(wav.content)) as w:
        assert w.getnchannels() == (2 if channels == "dual" else 1)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    middle = slice(1 * 8000, 3 * 8000)  # 1–3 s in: the <Play> and the callee both sound
    if channels == "mono":
        found = peaks(pcm[middle])
        assert near(found, 600) and near(found, 1000), found
        tail = peaks(pcm[int(4.6 * 8000) : int(5.0 * 8000)])  # the <Pause>: only the callee
        assert near(tail, 600) and not near(tail, 1000), tail
    else:
        first, second = pcm[0::2], pcm[1::2]
        assert frequency(first[middle]) == pytest.approx(600, abs=15)
        assert frequency(second[middle]) == pytest.approx(1000, abs=15)
        assert not near(peaks(first[middle]), 1000) and not near(peaks(second[middle]), 600)


def test_record_true_refuses_an_unknown_recording_track(daemon) -> None:
    with daemon.api() as api:
        response = api.post(
            "/Calls.json",
            data={"To": "sip:x@127.0.0.1:9", "From": FROM, "Twiml": "<Response/>",
                  "Record": "true", "RecordingTrack": "sideways"},
        )  # fmt: skip
    assert response.status_code == 400
    assert "RecordingTrack" in response.json()["message"]


def test_an_api_call_bridged_by_dial_posts_the_dial_action_when_the_api_hangs_up(
    daemon, webhooks, tmp_path
) -> None:
    """An API call's ``<Dial>`` bridges the called party (pjsua2) to a SIPp callee; the API
    hangs the call up while bridged: both legs end and the Dial action still learns the outcome
    (as for an inbound caller), with ``Direction=outbound-api``."""
    action = webhooks.route("/dial-action/api", rcml("<Say>never heard</Say>"))
    leg = webhooks.route("/dial-leg/api", Reply("", content_type="text/plain"))
    callee, port = answering("--seconds", "20")
    with SippUas(SIP_SCENARIOS / "uas_answer.xml", tmp_path) as bob:
        noun = f'<Sip statusCallback="{leg}" statusCallbackEvent="answered">{bob.uri}</Sip>'
        twiml = f'<Response><Dial action="{action}">{noun}</Dial></Response>'
        sid = call_pjsua(daemon, port, Twiml=twiml)
        webhooks.wait_for("/dial-leg/api", 1)  # bob answered: the two are bridged
        with daemon.api() as api:
            response = api.post(f"/Calls/{sid}.json", data={"Status": "completed"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"
        code, logs = bob.wait(15)
        assert code == 0, logs[-3000:]  # bob got our BYE
    assert answered(callee)["done"]
    [posted] = webhooks.wait_for("/dial-action/api", 1)
    assert posted.params["CallSid"] == sid and posted.params["Direction"] == "outbound-api"
    assert (posted.params["DialCallStatus"], posted.params["CallStatus"]) == (
        "completed",
        "completed",
    )
