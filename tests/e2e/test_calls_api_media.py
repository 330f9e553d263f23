"""POST Calls answered by pjsua2 (an independent SIP and RTP stack): the called party hears the
call's ``<Play>`` and ``<Say>``, and ``<Gather>`` takes the digits it sends (RFC 4733)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from e2e.test_media import frequency, loud_frames, read_wav, tone_wav
from support.conference_callers import Caller, near, peaks, wav_bytes
from support.webhooks import Reply, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[1] / "support" / "pjsua_media.py"
FROM = "+15105555555"


@pytest.fixture(scope="module")
def daemon(daemon):  # the module's daemon, with the caller ID the calls use
    daemon.create_number(PhoneNumber=FROM)
    return daemon


def answering_pjsua(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "answer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = ""
    while not line.startswith('{"ready"'):
        line = proc.stdout.readline()
        assert line, "the pjsua2 callee exited before it was ready"
    return proc, int(json.loads(line)["port"])


def result(proc: subprocess.Popen[str], timeout: float = 30) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith('{"states"')]
    assert lines, f"pjsua2 printed no result (rc={proc.returncode}):\n{err[-2000:]}"
    return dict(json.loads(lines[-1]))


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
    callee, port = answering_pjsua(
        "--record", str(heard), "--dtmf", "42", "--dtmf-at", "3.5", "--seconds", "20"
    )
    with daemon.api() as api:
        response = api.post(
            "/Calls.json",
            data={"To": f"sip:pjsua@127.0.0.1:{port}", "From": FROM, "Url": document},
        )
    assert response.status_code == 200, response.text
    sid = response.json()["sid"]
    outcome = result(callee)
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
    deadline = time.monotonic() + 10
    with daemon.api() as api:
        while api.get(f"/Calls/{sid}.json").json()["status"] != "completed":
            assert time.monotonic() < deadline, "the call never completed"
            time.sleep(0.1)


def test_record_true_records_the_called_party_and_posts_the_recording_callback(
    daemon, webhooks, tmp_path
) -> None:
    callback = webhooks.route("/recording/api", Reply("", content_type="text/plain"))
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(600, 6.0))
    callee, port = answering_pjsua("--play", str(said), "--seconds", "15")
    with daemon.api() as api:
        response = api.post(
            "/Calls.json",
            data={
                "To": f"sip:pjsua@127.0.0.1:{port}",
                "From": FROM,
                "Twiml": '<Response><Pause length="3"/></Response>',
                "Record": "true",
                "RecordingStatusCallback": callback,
            },
        )
        assert response.status_code == 200, response.text
        sid = response.json()["sid"]
        assert result(callee)["done"]
        [posted] = webhooks.wait_for("/recording/api", 1)
        params = posted.params
        assert params["CallSid"] == sid and params["RecordingStatus"] == "completed"
        assert params["RecordingSource"] == "OutboundAPI"
        assert 2 <= int(params["RecordingDuration"]) <= 4
        wav = api.get(f"/Recordings/{params['RecordingSid']}.wav")
        assert wav.status_code == 200
        listed = api.get(f"/Calls/{sid}/Recordings.json").json()
    pcm = read_wav(wav.content)
    assert frequency(pcm[8000:16000]) == pytest.approx(600, abs=15)  # the called party's tone
    assert [r["sid"] for r in listed["recordings"]] == [params["RecordingSid"]]


def test_send_digits_reach_the_called_party_as_rfc_4733_events(daemon, tmp_path) -> None:
    callee, port = answering_pjsua("--seconds", "12")
    with daemon.api() as api:
        response = api.post(
            "/Calls.json",
            data={
                "To": f"sip:pjsua@127.0.0.1:{port}",
                "From": FROM,
                "Twiml": '<Response><Pause length="2"/></Response>',
                "SendDigits": "12w#9",
            },
        )
    assert response.status_code == 200, response.text
    outcome = result(callee)
    assert outcome["done"] and outcome["digits"] == "12#9", outcome


def test_an_api_call_joins_a_conference_and_hears_an_inbound_caller(
    daemon, webhooks, tmp_path
) -> None:
    """``<Dial><Conference>`` on an API call: the called party (pjsua2, 700 Hz) and an inbound
    pjsua2 caller (440 Hz) in one room each hear the other, never themselves."""
    room = "api-room"
    document = rcml(f'<Dial><Conference beep="false" waitUrl="">{room}</Conference></Dial>')
    number = "7707"
    daemon.create_number(
        PhoneNumber=number, isSIP="true", VoiceUrl=webhooks.route("/voice/api-room", document)
    )
    inbound = Caller("in", f"sip:{number}@127.0.0.1:{daemon.sip_port}", tmp_path, 9.0, 440)
    played = tmp_path / "callee.wav"
    played.write_bytes(wav_bytes(700, 40.0))
    heard = tmp_path / "callee-heard.wav"
    callee, port = answering_pjsua("--play", str(played), "--record", str(heard), "--seconds", "9")
    try:
        with daemon.api() as api:
            twiml = (
                f'<Response><Dial><Conference beep="false" waitUrl="">{room}</Conference>'
                "</Dial></Response>"
            )
            response = api.post(
                "/Calls.json",
                data={"To": f"sip:pjsua@127.0.0.1:{port}", "From": FROM, "Twiml": twiml},
            )
        assert response.status_code == 200, response.text
        assert result(callee)["done"]
        inbound.finish()
    finally:
        for proc in (callee, inbound.proc):
            if proc.poll() is None:
                proc.kill()
    callee_heard = peaks(read_wav(heard)[2 * 8000 : 7 * 8000])
    assert near(callee_heard, 440) and not near(callee_heard, 700), callee_heard
    caller_heard = peaks(read_wav(inbound.heard)[3 * 8000 : 7 * 8000])
    assert near(caller_heard, 700) and not near(caller_heard, 440), caller_heard


def test_a_participant_added_by_dialling_out_hears_the_room(daemon, webhooks, tmp_path) -> None:
    """POST Conferences/{CF}/Participants: the dialled pjsua2 callee (700 Hz) joins the room of
    an inbound pjsua2 caller (440 Hz) with its Label; each hears the other, never itself."""
    room = "dial-out-room"
    document = rcml(f'<Dial><Conference beep="false" waitUrl="">{room}</Conference></Dial>')
    number = "7708"
    daemon.create_number(
        PhoneNumber=number, isSIP="true", VoiceUrl=webhooks.route("/voice/dial-out", document)
    )
    inbound = Caller("in", f"sip:{number}@127.0.0.1:{daemon.sip_port}", tmp_path, 10.0, 440)
    played = tmp_path / "agent.wav"
    played.write_bytes(wav_bytes(700, 40.0))
    heard = tmp_path / "agent-heard.wav"
    callee, port = answering_pjsua("--play", str(played), "--record", str(heard), "--seconds", "8")
    try:
        with daemon.api() as api:
            deadline, conference = time.monotonic() + 10, None
            while conference is None:
                assert time.monotonic() < deadline, "the inbound caller's conference never began"
                found = api.get("/Conferences.json", params={"FriendlyName": room}).json()
                running = [c for c in found["conferences"] if c["status"] != "completed"]
                conference = running[0]["sid"] if running else None
                time.sleep(0.2)
            participants = f"/Conferences/{conference}/Participants.json"
            to = f"sip:pjsua@127.0.0.1:{port}"
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
            outcome = result(callee)
            assert outcome["done"], outcome
            listed = api.get(participants).json()["participants"]
            joined = [p for p in listed if p["call_sid"] == body["call_sid"]]
            assert joined and joined[0]["label"] == "agent", listed
        inbound.finish()
    finally:
        for proc in (callee, inbound.proc):
            if proc.poll() is None:
                proc.kill()
    agent_heard = peaks(read_wav(heard)[2 * 8000 : 6 * 8000])
    assert near(agent_heard, 440) and not near(agent_heard, 700), agent_heard
    with daemon.api() as api:
        deadline = time.monotonic() + 10
        while api.get(f"/Conferences/{conference}.json").json()["status"] != "completed":
            assert time.monotonic() < deadline, "the conference never ended"
            time.sleep(0.2)
        ended = api.post(
            f"/Conferences/{conference}/Participants.json",
            data={"To": f"sip:pjsua@127.0.0.1:{port}", "From": FROM},
        )
    assert ended.status_code == 400 and "ended" in ended.text, ended.text


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
    callee, port = answering_pjsua("--play", str(said), "--seconds", "15")
    with daemon.api() as api:
        response = api.post(
            "/Calls.json",
            data={
                "To": f"sip:pjsua@127.0.0.1:{port}",
                "From": FROM,
                "Twiml": f'<Response><Play>{ours}</Play><Pause length="1"/></Response>',
                "Record": "true",
                "RecordingChannels": channels,
                "RecordingStatusCallback": callback,
            },
        )
        assert response.status_code == 200, response.text
        assert result(callee)["done"]
        [posted] = webhooks.wait_for(f"/recording/both/{channels}", 1)
        params = posted.params
        assert params["RecordingChannels"] == ("2" if channels == "dual" else "1")
        assert 4 <= int(params["RecordingDuration"]) <= 6
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
