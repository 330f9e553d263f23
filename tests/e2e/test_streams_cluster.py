"""REST media streams across two daemons on one PostgreSQL schema: a pjsua2 call lives on node A;
``POST Calls/{CA}/Streams`` sent to node B starts a stream on it through the command channel
(``cluster/call_commands.py``), the `websockets` agent on loopback gets ``start`` with the call's
CallSid and the caller's audio; a refusal comes back with its code; B stops the stream by name
(the agent gets ``stop``); once A is killed, B answers 503 with Retry-After (A does not reply),
then 404 once the survivor has closed the call; never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.call_audio import call, frequency, tone_wav
from support.daemon import DaemonProcess
from support.pg import psql_value, schema_url
from support.stream_agent import StreamAgent
from support.webhooks import Reply, WebhookServer, rcml

pytest.importorskip("pjsua2")
pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def agent() -> Iterator[StreamAgent]:
    server = StreamAgent().start_thread()
    yield server
    server.stop_thread()


def _env(schema: str, node_id: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_CLUSTER_VERSION_CHECK": "1",
        "RCMLROUTER_STREAMS_ALLOW_INSECURE": "true",
    }


def _wait(condition: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_streams_of_a_call_on_node_a_are_started_and_stopped_through_node_b(
    tmp_path: Path, schema: str, webhooks: WebhookServer, agent: StreamAgent
) -> None:
    a = DaemonProcess(tmp_path / "a", **_env(schema, "node-a")).start()
    b = DaemonProcess(tmp_path / "b", **_env(schema, "node-b"))
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    b.start()
    try:
        voice = webhooks.route("/streams-cluster/voice", rcml('<Pause length="30"/>'))
        status = webhooks.route("/streams-cluster/status", Reply("", content_type="text/plain"))
        a.create_number(PhoneNumber="7111", isSIP="true", VoiceUrl=voice, StatusCallback=status)
        time.sleep(0.5)  # the number reaches A's snapshot
        said = tmp_path / "said.wav"
        said.write_bytes(tone_wav(500, 25.0))
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(
                call, a, "7111", tmp_path / "heard.wav", "--play", str(said), "--seconds", "20"
            )
            [answered] = [
                r
                for r in webhooks.wait_for("/streams-cluster/status", 2)
                if r.params["CallStatus"] == "in-progress"
            ]
            sid = answered.params["CallSid"]
            assert psql_value(schema, f"SELECT owner FROM calls WHERE sid = '{sid}'") == "node-a"
            base = f"http://127.0.0.1:{b.api_port}/2010-04-01/Accounts/{b.account_sid}/Calls/{sid}"
            with httpx.Client(base_url=base, auth=(a.account_sid, a.auth_token), timeout=15) as api:
                form = {"Url": agent.url, "Name": "remote", "Parameter1.Name": "k",
                        "Parameter1.Value": "v"}  # fmt: skip
                created = api.post("/Streams.json", data=form)
                assert created.status_code == 201, created.text
                stream = created.json()
                assert stream["sid"].startswith("MZ") and stream["call_sid"] == sid
                assert (stream["name"], stream["status"]) == ("remote", "in-progress")
                assert stream["uri"].endswith(f"/Calls/{sid}/Streams/{stream['sid']}.json")
                _wait(lambda: len(agent.events("media")) >= 50, "no media reached the agent")
                [start] = agent.events("start")
                assert start["streamSid"] == stream["sid"]
                assert start["start"]["callSid"] == sid
                assert start["start"]["customParameters"] == {"k": "v"}
                assert frequency(agent.inbound_audio()[-4000:]) == pytest.approx(500, abs=5)
                # a refusal crosses with its code: the name is in use on A
                again = api.post("/Streams.json", data={"Url": agent.url, "Name": "remote"})
                assert (again.status_code, again.json()["code"]) == (400, 31941), again.text
                # stopped by name, on the Restcomm base of node B
                restcomm = f"http://127.0.0.1:{b.api_port}/restcomm/2012-04-24/Accounts/"
                stop_url = f"{restcomm}{b.account_sid}/Calls/{sid}/Streams/remote.json"
                stopped = api.post(stop_url, data={"Status": "stopped"})
                assert stopped.status_code == 200, stopped.text
                assert (stopped.json()["sid"], stopped.json()["status"]) == (
                    stream["sid"],
                    "stopped",
                )
                _wait(lambda: agent.events("stop"), "the agent got no stop")
                assert agent.events("stop")[0]["streamSid"] == stream["sid"]
                gone = api.post("/Streams/remote.json", data={"Status": "stopped"})
                assert (gone.status_code, gone.json()["code"]) == (404, 20404), gone.text
                # node A dies with the call: its heartbeat is still fresh, so B asks it and
                # answers 503 once the reply wait is over; then the survivor closes the call: 404
                a.kill()
                began = time.monotonic()
                first = api.post("/Streams.json", data={"Url": agent.url})
                waited = time.monotonic() - began
                assert (first.status_code, first.json()["code"]) == (503, 20503), first.text
                assert first.headers["Retry-After"] == "1"
                assert 7 < waited < 10, waited  # the 8 s reply wait, never a hang
                deadline = time.monotonic() + 10
                while (
                    answer := api.post("/Streams.json", data={"Url": agent.url})
                ).status_code != 404:
                    assert answer.status_code == 503, answer.text
                    assert time.monotonic() < deadline, answer.text
                    time.sleep(0.2)
                assert answer.json()["code"] == 20404
                started = time.monotonic()
                assert (
                    api.post("/Streams/remote.json", data={"Status": "stopped"}).status_code == 404
                )
                assert time.monotonic() - started < 1  # the ended record answers, A is not asked
            caller.exception(timeout=40)  # pjsua2 gives up on the dead node
        assert agent.connections == 1
    finally:
        b.stop()
        a.kill()
