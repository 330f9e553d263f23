"""A pjsua2 user agent with media (the independent RTP peer): records what it hears to a WAV,
plays a WAV into the call, sends RFC 4733 DTMF. Prints one JSON line when the call is over.

Run as a subprocess (pjsua2 keeps one library per process), null audio device, 8 kHz bridge:

    python pjsua_media.py call sip:1234@127.0.0.1:5060 --record heard.wav [--play said.wav]
        [--dtmf 12# --dtmf-at 1.5] [--seconds 15] [--hangup-after S]
    python pjsua_media.py answer --record heard.wav ...   # waits for one INVITE, answers 200;
        # prints {"ready": true, "port": N} first, then the result line

The result: {"states": [[text, status, reason]...], "done": bool, "seconds": float,
"confirmed_at": float | null, "dtmf_sent_at": float | null, "codec": str, "digits": the keys
received as RFC 4733 events, "recording_started_at": float | null (wall clock, when the WAV's
first sample was taken)}. SIGTERM ends the call at once (as if ``--seconds`` had passed): it
hangs up and prints the result line, its WAV complete.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import pjsua2 as pj

STOP = threading.Event()  # set by SIGTERM: hang up now


class MediaCall(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account, options: argparse.Namespace, call_id: int = -1):
        super().__init__(account, call_id)
        self.options = options
        self.states: list[tuple[str, int, str]] = []
        self.done = False
        self.confirmed_at: float | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.codec = ""
        self.recording_started_at: float | None = None  # time.time(): comparable across processes
        self.digits: list[str] = []  # RFC 4733 key presses received

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.digits.append(prm.digit)

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.states.append((info.stateText, info.lastStatusCode, info.lastReason))
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.done = True

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            # a re-INVITE (a bridge moving the media elsewhere) may give the call a new audio
            # port in the conference bridge: (re)connect the recorder and the player every time
            audio = self.getAudioMedia(index)
            self.codec = self.getStreamInfo(index).codecName
            if self.options.record:
                if self.recorder is None:
                    self.recorder = pj.AudioMediaRecorder()
                    self.recorder.createRecorder(self.options.record)
                    self.recording_started_at = time.time()
                audio.startTransmit(self.recorder)
            if self.options.play:
                if self.player is None:
                    self.player = pj.AudioMediaPlayer()
                    self.player.createPlayer(self.options.play, pj.PJMEDIA_FILE_NO_LOOP)
                self.player.startTransmit(audio)


class AnsweringAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, options: argparse.Namespace) -> None:
        super().__init__()
        self.options = options
        self.call: MediaCall | None = None

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.call = MediaCall(self, self.options, prm.callId)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        self.call.answer(answer)


def start_endpoint() -> tuple[pj.Endpoint, int]:
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.logConfig.level = 1
    config.logConfig.consoleLevel = 1
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.maxCalls = 4
    config.medConfig.clockRate = 8000
    config.medConfig.sndClockRate = 8000
    config.medConfig.noVad = True
    config.medConfig.ecTailLen = 0
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.port = 0
    transport.boundAddress = "127.0.0.1"
    transport_id = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.audDevManager().setNullDev()
    for codec in endpoint.codecEnum2():
        priority = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}.get(codec.codecId, 0)
        endpoint.codecSetPriority(codec.codecId, priority)
    endpoint.libStart()
    port = endpoint.transportGetInfo(transport_id).localName.split(":")[-1]
    return endpoint, int(port)


def account_config() -> pj.AccountConfig:
    config = pj.AccountConfig()
    config.idUri = "sip:pjsua@127.0.0.1"
    config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    return config


def run(endpoint: pj.Endpoint, get_call: object, options: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    dtmf_sent_at: float | None = None
    hung_up = False
    while time.monotonic() - started < options.seconds and not STOP.is_set():
        endpoint.libHandleEvents(10)
        call = get_call()  # type: ignore[operator]
        if call is None or call.confirmed_at is None:
            continue
        if call.done:
            break
        since = time.monotonic() - call.confirmed_at
        if options.dtmf and dtmf_sent_at is None and since >= options.dtmf_at:
            call.dialDtmf(options.dtmf)
            dtmf_sent_at = round(since, 3)
        if options.hangup_after and since >= options.hangup_after and not hung_up:
            call.hangup(pj.CallOpParam(True))
            hung_up = True
    call = get_call()  # type: ignore[operator]
    if call is not None and not call.done:
        call.hangup(pj.CallOpParam(True))
        for _ in range(30):
            endpoint.libHandleEvents(10)
    if call is not None:  # destroying the recorder finishes its WAV header
        call.recorder = call.player = None
    return {
        "states": call.states if call else [],
        "done": bool(call and call.done),
        "seconds": round(time.monotonic() - started, 2),
        "confirmed_at": round(call.confirmed_at - started, 3)
        if call and call.confirmed_at
        else None,
        "dtmf_sent_at": dtmf_sent_at,
        "codec": call.codec if call else "",
        "digits": "".join(call.digits) if call else "",
        "recording_started_at": call.recording_started_at if call else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["call", "answer"])
    parser.add_argument("target", nargs="?")
    parser.add_argument("--record")
    parser.add_argument("--play")
    parser.add_argument("--dtmf")
    parser.add_argument("--dtmf-at", type=float, default=1.0)
    parser.add_argument("--hangup-after", type=float)
    parser.add_argument("--seconds", type=float, default=15.0)
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: STOP.set())
    endpoint, port = start_endpoint()
    if options.mode == "call":
        account = pj.Account()
        account.create(account_config())
        call = MediaCall(account, options)
        call.makeCall(options.target, pj.CallOpParam(True))
        result = run(endpoint, lambda: call, options)
    else:
        account = AnsweringAccount(options)
        account.create(account_config())
        print(json.dumps({"ready": True, "port": port}), flush=True)
        result = run(endpoint, lambda: account.call, options)
    print(json.dumps(result), flush=True)
    account.shutdown()
    endpoint.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
