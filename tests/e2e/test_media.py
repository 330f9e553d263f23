"""The media verbs heard by an independent peer: pjsua2 calls the real daemon, records what it
hears to a WAV, sends RFC 4733 DTMF and plays a WAV into ``<Record>``.

Durations are measured as 20 ms frames with a loud sample; frequencies as the FFT peak.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from rcmlrouter.media import audio
from support.call_audio import (
    RATE,
    call,
    frequency,
    loud_frames,
    read_wav,
    runs,
    tone_wav,
    wav_bytes,
)
from support.daemon import DaemonProcess
from support.webhooks import Reply, WebhookServer, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e


def number(daemon: DaemonProcess, webhooks: WebhookServer, dial: str, body: Reply) -> None:
    url = webhooks.route(f"/voice/{dial}", body)
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)


def test_play_is_heard_at_its_length_and_pitch_and_a_404_is_skipped(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    tone = webhooks.route(f"/audio/{dial}/tone.wav", Reply(tone_wav(1000, 2.0), 200, "audio/wav"))
    missing = webhooks.url(f"/audio/{dial}/missing.wav")
    number(daemon, webhooks, dial, rcml(f"<Play>{missing}</Play>", f"<Play>{tone}</Play>"))
    heard = tmp_path / "heard.wav"
    call(daemon, dial, heard, "--seconds", "15")
    pcm = read_wav(heard)
    frames = loud_frames(pcm)
    assert frames.sum() / 50 == pytest.approx(2.0, rel=0.05)
    start = int(np.argmax(frames)) * 160
    assert frequency(pcm[start : start + RATE]) == pytest.approx(1000, abs=5)
    with daemon.api() as api:
        found = api.get("/Notifications.json").json()
    codes = [n["error_code"] for n in found["notifications"] if missing in n["message_text"]]
    assert codes == [11200], found


def test_a_long_file_served_slowly_is_heard_from_start_to_end(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    """Issue 16 item 10: a 5-second WAV (4 s at 1 kHz, then 1 s at 500 Hz) arrives in 10 TCP
    segments 0.2 s apart; the caller hears all of it, the last second included."""
    pcm = np.concatenate(
        [audio.tone(1000.0, 4.0, amplitude=0.4).pcm, audio.tone(500.0, 1.0, amplitude=0.4).pcm]
    )
    slow = Reply(wav_bytes(pcm), 200, "audio/wav", segments=10, gap=0.2)
    url = webhooks.route(f"/audio/{dial}/long.wav", slow)
    number(daemon, webhooks, dial, rcml(f"<Play>{url}</Play>"))
    heard = tmp_path / "heard.wav"
    call(daemon, dial, heard, "--seconds", "20")
    got = read_wav(heard)
    frames = loud_frames(got)
    assert frames.sum() / 50 == pytest.approx(5.0, rel=0.04), runs(frames)
    [(start, length)] = runs(frames)
    assert length == pytest.approx(5.0, rel=0.04)
    first = int(start * RATE)
    assert frequency(got[first + 1000 : first + 1000 + RATE]) == pytest.approx(1000, abs=5)
    last = int((start + length) * RATE)
    assert frequency(got[last - int(0.9 * RATE) : last - 400]) == pytest.approx(500, abs=5)


def test_say_produces_speech(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    number(daemon, webhooks, dial, rcml('<Say voice="woman">Hello from rcmlrouter.</Say>'))
    heard = tmp_path / "heard.wav"
    call(daemon, dial, heard, "--seconds", "15")
    pcm = read_wav(heard)
    frames = loud_frames(pcm)
    assert 0.4 < frames.sum() / 50 < 4.0
    loud = [pcm[i * 160 : i * 160 + 800] for i in np.flatnonzero(frames)[::5]]
    pitches = {round(frequency(chunk) / 50) for chunk in loud if len(chunk) == 800}
    assert len(pitches) >= 4, pitches  # speech moves around the spectrum; a tone would not


def test_gather_stops_its_prompt_at_the_first_digit_and_posts_the_digits(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    tone = webhooks.route(f"/audio/{dial}/tone.wav", Reply(tone_wav(1000, 3.0), 200, "audio/wav"))
    action = webhooks.route(f"/digits/{dial}", rcml("<Hangup/>"))
    prompt = "This prompt is long enough to be interrupted by the caller pressing keys."
    gather = (
        f'<Gather action="{action}" timeout="3"><Say>{prompt}</Say><Play>{tone}</Play></Gather>'
    )
    number(daemon, webhooks, dial, rcml(gather, "<Say>not reached</Say>"))
    heard = tmp_path / "heard.wav"
    result = call(daemon, dial, heard, "--dtmf", "42#", "--dtmf-at", "1.5", "--seconds", "15")
    posted = webhooks.wait_for(f"/digits/{dial}", 1)
    assert [r.params["Digits"] for r in posted] == ["42"]
    frames = loud_frames(read_wav(heard))
    last_sound = float(np.flatnonzero(frames)[-1]) / 50
    # heard.wav starts when media does (about when the call is confirmed): the prompt
    # stopped within 400 ms of the first key (sent at 1.5 s), and the tone never played
    assert result["dtmf_sent_at"] == pytest.approx(1.5, abs=0.1)
    assert last_sound < 1.5 + 0.4, runs(frames)


def test_gather_without_digits_plays_its_verbs_in_order_then_the_next_verb(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    urls = {}
    for hz in (600, 1000, 1500):
        reply = Reply(tone_wav(hz, 0.5), 200, "audio/wav")
        urls[hz] = webhooks.route(f"/audio/{dial}/{hz}.wav", reply)
    action = webhooks.url(f"/digits/{dial}")
    gather = (
        f'<Gather action="{action}" timeout="1"><Play>{urls[600]}</Play><Pause length="1"/>'
        f"<Play>{urls[1000]}</Play></Gather>"
    )
    number(daemon, webhooks, dial, rcml(gather, f"<Play>{urls[1500]}</Play>"))
    heard = tmp_path / "heard.wav"
    call(daemon, dial, heard, "--seconds", "15")
    pcm = read_wav(heard)
    stretches = runs(loud_frames(pcm))
    assert [n for _, n in stretches] == pytest.approx([0.5, 0.5, 0.5], abs=0.05), stretches
    pitches = [frequency(pcm[int(s * RATE) : int((s + n) * RATE)]) for s, n in stretches]
    assert pitches == pytest.approx([600, 1000, 1500], abs=10)
    gaps = [b[0] - (a[0] + a[1]) for a, b in itertools.pairwise(stretches)]
    assert gaps == pytest.approx([1.0, 1.0], abs=0.1)  # the <Pause>, then the Gather timeout
    assert webhooks.requests(f"/digits/{dial}") == []


def test_record_stores_what_the_caller_said(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    action = webhooks.route(f"/recorded/{dial}", rcml("<Hangup/>"))
    status = webhooks.route(f"/recording-status/{dial}", Reply("", 204))
    record = (
        f'<Record action="{action}" timeout="1" maxLength="10" playBeep="false" '
        f'recordingStatusCallback="{status}"/>'
    )
    number(daemon, webhooks, dial, rcml(record))
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(600, 1.5, lead=0.5))
    call(daemon, dial, tmp_path / "heard.wav", "--play", str(said), "--seconds", "15")
    posted = webhooks.wait_for(f"/recorded/{dial}", 1)[0].params
    assert posted["RecordingDuration"] in ("2", "3")  # 0.5 s lead + 1.5 s + the kept tail
    assert posted["RecordingSid"].startswith("RE")
    assert posted["RecordingUrl"].endswith(f"/Recordings/{posted['RecordingSid']}.wav")
    assert posted["Digits"] == ""
    path = posted["RecordingUrl"].split(f"/Accounts/{daemon.account_sid}", 1)[1]
    with daemon.api() as api:
        audio_file = api.get(path)
        meta = api.get(path.replace(".wav", ".json")).json()
        listed = api.get("/Recordings.json").json()
    anonymous = httpx.get(posted["RecordingUrl"])
    assert anonymous.status_code == 401
    assert audio_file.status_code == 200
    assert audio_file.headers["Content-Type"] == "audio/wav"
    pcm = read_wav(audio_file.content)
    frames = loud_frames(pcm)
    assert frames.sum() / 50 == pytest.approx(1.5, rel=0.05)
    start = int(np.argmax(frames)) * 160
    assert frequency(pcm[start : start + RATE]) == pytest.approx(600, abs=5)
    assert meta["sid"] == posted["RecordingSid"]
    assert meta["call_sid"] == posted["CallSid"]
    assert posted["RecordingSid"] in [r["sid"] for r in listed["recordings"]]
    callback = webhooks.wait_for(f"/recording-status/{dial}", 1)[0].params
    assert callback["RecordingStatus"] == "completed"
    assert callback["RecordingSid"] == posted["RecordingSid"]


def test_the_demo_number_says_hello_and_plays_the_shipped_wav(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """The demo number of ``init --demo`` (/demos/hello.xml) is heard, then the daemon hangs up
    (``call`` asserts it) and logs the call completed (the one end-to-end test of it)."""
    heard = tmp_path / "heard.wav"
    call(daemon, "1234", heard, "--seconds", "20")
    stretches = runs(loud_frames(read_wav(heard)))
    assert sum(n for _, n in stretches) > 3.0, stretches  # the <Say>, then hello.wav
    deadline = time.monotonic() + 5
    while not (ended := [e for e in daemon.logs("call.completed") if e.get("dialed") == "1234"]):
        assert time.monotonic() < deadline, "no call.completed line for the demo number"
        time.sleep(0.05)
    assert ended[0]["call_status"] == "completed", ended
    with httpx.Client() as client:
        wav = client.get(f"http://127.0.0.1:{daemon.api_port}/demos/hello.wav")
    assert wav.status_code == 200 and wav.headers["Content-Type"] == "audio/wav"


def test_record_cut_by_the_caller_hanging_up_posts_digits_hangup(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, tmp_path: Path
) -> None:
    action = webhooks.route(f"/recorded/{dial}", rcml("<Say>never heard</Say>"))
    number(daemon, webhooks, dial, rcml(f'<Record action="{action}" playBeep="false"/>'))
    said = tmp_path / "said.wav"
    said.write_bytes(tone_wav(600, 5.0))
    args = ("--play", str(said), "--hangup-after", "2", "--seconds", "10")
    call(daemon, dial, tmp_path / "heard.wav", *args)
    posted = webhooks.wait_for(f"/recorded/{dial}", 1)[0].params
    assert posted["Digits"] == "hangup"
    assert posted["RecordingDuration"] == "2"
    assert posted["CallStatus"] == "completed"
