"""One conference across two real daemons on one PostgreSQL schema.

Caller X lands on node A, caller Y on node B, both for the same conference name: the store
gives the name to one room (A's, X came first), and Y joins it through B's internal SIP leg to
A. Each hears the other (pjsua2, tones); B's API mutes Y (the change goes to A through the
command channel, ``cluster/call_commands.py``). Then A
is killed (SIGKILL): B sees its heartbeat stop, ends the internal leg so Y goes on with its next
verb, and, as the survivor that claims A's work, ends A's conference: Y's and X's
``participant-leave`` and ``conference-end`` are delivered and the records say ``completed``.
"""

from __future__ import annotations

import time

import httpx
import pytest

from support.conference_callers import Caller, near, wav_bytes
from support.daemon import DaemonProcess
from support.pg import cluster_env
from support.webhooks import Reply, rcml

pytest.importorskip("pjsua2")
pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
EVENTS = "start end join leave"


def test_callers_on_two_nodes_share_one_room_and_survive_its_owner(
    tmp_path, schema, webhooks, dial
) -> None:
    a = DaemonProcess(tmp_path / "a", **cluster_env(schema, "node-a")).start()
    b = DaemonProcess(tmp_path / "b", **cluster_env(schema, "node-b"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    callers: list[Caller] = []
    try:
        room = f"two-{dial}"
        events = webhooks.route(f"/conf2-events/{dial}", Reply("", 204))
        after = webhooks.route(
            f"/audio2/{dial}/1800.wav", Reply(wav_bytes(1800, 4.0), 200, "audio/wav")
        )
        conference = (
            f'<Dial><Conference beep="false" waitUrl="" statusCallback="{events}" '
            f'statusCallbackEvent="{EVENTS}">{room}</Conference></Dial>'
        )
        url = webhooks.route(f"/voice2/{dial}", rcml(conference, f'<Play loop="0">{after}</Play>'))
        a.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
        time.sleep(1.2)  # the number reaches B's snapshot (change feed)
        x = Caller("X", f"sip:{dial}@127.0.0.1:{a.sip_port}", tmp_path, 18.0, 440)
        callers.append(x)
        with a.api() as api_a:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                listed = api_a.get("/Conferences.json", params={"FriendlyName": room}).json()
                if listed["conferences"]:
                    break
                time.sleep(0.2)
            assert listed["conferences"], "X's conference did not appear"
            conference_sid = listed["conferences"][0]["sid"]
            y = Caller("Y", f"sip:{dial}@127.0.0.1:{b.sip_port}", tmp_path, 16.0, 1100)
            callers.append(y)
            deadline = time.monotonic() + 10
            people: list[dict[str, str]] = []
            while time.monotonic() < deadline and len(people) < 2:
                people = api_a.get(f"/Conferences/{conference_sid}/Participants.json").json()[
                    "participants"
                ]
                time.sleep(0.2)
            assert len(people) == 2, people
        assert listed["conferences"][0]["status"] in ("init", "in-progress")
        x_sid, y_sid = (r.params["CallSid"] for r in webhooks.requests(f"/voice2/{dial}"))
        with b.api() as api_b:  # B's API: the change goes to the owner (A), A's row comes back
            one = f"/Conferences/{conference_sid}/Participants/{y_sid}.json"
            muted = api_b.post(one, data={"Muted": "true"})
            assert muted.status_code == 200 and muted.json()["muted"] is True, muted.text
            assert api_b.post(one, data={"Muted": "false"}).json()["muted"] is False
        health = httpx.get(f"http://127.0.0.1:{a.api_port}/health", timeout=5).json()
        assert health["call_commands"]["served"] == 2, health  # both through the channel
        t1 = time.time()
        time.sleep(2.5)
        a.kill()  # the owner dies with the room
        killed = time.time()
        ended = webhooks.wait_for(f"/conf2-events/{dial}", 6, timeout=20)
        time.sleep(max(0.0, killed + 7.0 - time.time()))
        x.hang_up()  # all heard: not waiting for their own hang-ups (18 s, 16 s)
        y.hang_up()
        heard_x, heard_y = x.window(t1 + 0.5, t1 + 2.5), y.window(t1 + 0.5, t1 + 2.5)
        assert near(heard_x, 1100) and not near(heard_x, 440), heard_x
        assert near(heard_y, 440) and not near(heard_y, 1100), heard_y
        # Y went on with its next verb once B saw A stop (lease 2 s, checked every 0.5 s)
        assert near(y.window(killed + 4.0, killed + 6.5), 1800)
        names = [r.params["StatusCallbackEvent"] for r in ended]
        assert names == [
            "participant-join", "participant-join", "conference-start",
            "participant-leave", "participant-leave", "conference-end",
        ], names  # fmt: skip
        assert {r.params["CallSid"] for r in ended[3:5]} == {y_sid, x_sid}
        assert ended[-1].params["ReasonConferenceEnded"] == "conference-ended-by-node-failure"
        with b.api() as api_b:
            record = api_b.get(f"/Conferences/{conference_sid}.json").json()
            assert record["status"] == "completed"
            rows = api_b.get(f"/Conferences/{conference_sid}/Participants.json").json()
            assert {p["status"] for p in rows["participants"]} == {"completed"}
    finally:
        for caller in callers:
            if caller.proc.poll() is None:
                caller.proc.kill()
        b.stop()
        a.kill()
