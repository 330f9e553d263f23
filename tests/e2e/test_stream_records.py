"""A call's media streams are kept in the store and listed on its console page, end to end:
pjsua2 calls the real daemon, whose RCML (or the REST API) streams the call to a real WebSocket
agent (support/stream_agent.py); a stream refused by a limit and one whose agent is down are
``failed`` rows with their Twilio codes. In a cluster (two daemons on one PostgreSQL schema)
the other node's console lists the streams of a call on the first."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import html
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.server import ServerConnection

from rcmlrouter.store.base import Store
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.sqlite import SqliteStore
from rcmlrouter.store.stream_records import StreamRecord
from support.call_audio import call
from support.daemon import DaemonProcess
from support.pg import drop_schema, new_schema_name, schema_url
from support.ports import free_port
from support.stream_agent import StreamAgent, read_all
from support.webhooks import WebhookServer, rcml

pytest.importorskip("pjsua2")
pytestmark = pytest.mark.e2e
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path_factory.mktemp("daemon"), RCMLROUTER_STREAMS_ALLOW_INSECURE="true"
    ).start()
    yield process
    process.stop()


@pytest.fixture
def agent() -> Iterator[StreamAgent]:
    async def by_path(server: StreamAgent, ws: ServerConnection) -> None:
        assert ws.request is not None
        if not ws.request.path.endswith("bot"):
            await read_all(server, ws)
            return
        for _ in range(12):  # the <Connect> agent: connected, start, 10 media, then it hangs up
            server.record(await ws.recv())
        await ws.close()

    server = StreamAgent(behaviour=by_path).start_thread()
    yield server
    server.stop_thread()


def stream_rows(
    daemon: DaemonProcess,
    call_sid: str,
    count: int,
    opened: Callable[[], Awaitable[Store]] | None = None,
) -> list[StreamRecord]:
    """The call's rows once ``count`` of them are over (written in the background)."""

    async def read() -> list[StreamRecord]:
        store = await (opened or (lambda: SqliteStore.open(daemon.db)))()
        try:
            return await store.call_streams(call_sid)
        finally:
            await store.close()

    deadline = time.monotonic() + 10
    while True:
        found = asyncio.run(read())
        if sum(r.status != "in-progress" for r in found) >= count:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def console_page(daemon: DaemonProcess, path: str) -> str:
    base = f"http://127.0.0.1:{daemon.api_port}"
    with httpx.Client(base_url=base, timeout=10) as browser:
        token = CSRF.search(browser.get("/console/signin").text)
        assert token is not None
        fields = {"user": daemon.account_sid, "secret": daemon.auth_token, "next": path}
        signed = browser.post("/console/signin", data={"csrf_token": token.group(1), **fields})
        assert signed.status_code == 303, signed.text[:300]
        page = browser.get(path)
        assert page.status_code == 200, page.text[:300]
        return page.text


def test_a_calls_streams_are_stored_and_listed_on_its_page(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    down = f"ws://127.0.0.1:{free_port()}/"  # nothing listens: the agent is down
    with socket.create_server(("127.0.0.1", 0)) as mute:  # accepts, never answers the handshake
        silent = f"ws://127.0.0.1:{mute.getsockname()[1]}/"
        verbs = (
            f'<Start><Stream url="{agent.url}?fork" name="fork" track="both_tracks"/></Start>',
            f'<Start><Stream url="{agent.url}?again" name="fork"/></Start>',  # the name is taken
            f'<Start><Stream url="{down}" name="down"/></Start>',
            f'<Start><Stream url="{silent}" name="silent"/></Start>',
            '<Stop><Stream name="silent"/></Stop>',  # stopped before it connected
            f'<Connect><Stream url="{agent.url}?bot" name="bot"/></Connect>',
            '<Stop><Stream name="fork"/></Stop>',
            '<Pause length="1"/>',
        )
        url = webhooks.route(f"/voice/{dial}", rcml(*verbs))
        daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
        call(daemon, dial, tmp_path / "heard.wav", "--seconds", "10")
    [voice] = webhooks.wait_for(f"/voice/{dial}", 1)
    call_sid = voice.params["CallSid"]

    rows = stream_rows(daemon, call_sid, 5)

    described = [(r.name, r.url, r.track, r.started_by, r.status, r.error_code) for r in rows]
    assert described == [
        ("fork", f"{agent.url}?fork", "both_tracks", "start", "stopped", None),
        ("fork", f"{agent.url}?again", "inbound_track", "start", "failed", 31941),
        ("down", down, "inbound_track", "start", "failed", 31902),
        ("silent", silent, "inbound_track", "start", "stopped", None),
        ("bot", f"{agent.url}?bot", "inbound_track", "connect", "stopped", None),
    ]
    assert all(r.call_sid == call_sid and r.account_sid == daemon.account_sid for r in rows)
    assert all(r.sid.startswith("MZ") and r.date_ended is not None for r in rows)
    assert rows[1].error_message == "a stream named 'fork' is running"
    assert rows[2].error_message
    started = {e["streamSid"] for e in agent.events("start")}
    assert started == {rows[0].sid, rows[4].sid}  # the sids the agent was told

    page = console_page(daemon, f"/console/calls/{call_sid}")
    section = page.split('<h2 id="streams-heading">Media streams</h2>', 1)[1]
    table = html.unescape(section.split("</table>", 1)[0])
    for row in rows:
        assert row.sid in table
    assert "31941: a stream named 'fork' is running" in table
    assert "<Connect><Stream>" in table and "31902: " in table


def test_a_stream_started_through_the_api_is_an_api_row(
    daemon: DaemonProcess, webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    url = webhooks.route(f"/voice/{dial}", rcml('<Pause length="4"/>'))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url)
    caller = threading.Thread(
        target=call, args=(daemon, dial, tmp_path / "heard.wav", "--seconds", "10")
    )
    caller.start()
    try:
        [voice] = webhooks.wait_for(f"/voice/{dial}", 1)
        call_sid = voice.params["CallSid"]
        time.sleep(0.5)  # answered
        with daemon.api() as api:
            refused = api.post(f"/Calls/{call_sid}/Streams.json", data={"Url": "http://x/"})
            assert refused.status_code == 400  # refused by the API itself: no stream, no row
            created = api.post(
                f"/Calls/{call_sid}/Streams.json",
                data={"Url": agent.url, "Name": "rest", "Track": "both_tracks"},
            )
            assert created.status_code in (200, 201), created.text
            time.sleep(0.5)
            stopped = api.post(f"/Calls/{call_sid}/Streams/rest.json", data={"Status": "stopped"})
            assert stopped.status_code == 200, stopped.text
    finally:
        caller.join(20)
    [row] = stream_rows(daemon, call_sid, 1)
    assert row.sid == created.json()["sid"] and row.name == "rest"
    assert (row.started_by, row.track, row.status, row.url) == (
        "api", "both_tracks", "stopped", agent.url,
    )  # fmt: skip


@pytest.mark.postgres
def test_another_nodes_console_lists_the_streams_of_a_call(
    webhooks: WebhookServer, agent: StreamAgent, tmp_path: Path
) -> None:
    schema = new_schema_name()
    env = {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_STREAMS_ALLOW_INSECURE": "true",
    }
    a = DaemonProcess(tmp_path / "a", RCMLROUTER_CLUSTER_NODE_ID="node-a", **env).start()
    b = DaemonProcess(tmp_path / "b", RCMLROUTER_CLUSTER_NODE_ID="node-b", **env)
    b.account_sid, b.auth_token = a.account_sid, a.auth_token
    try:
        b.start()
        verbs = (
            f'<Start><Stream url="{agent.url}?fork" name="fork"/></Start>',
            f'<Connect><Stream url="{agent.url}?bot" name="bot"/></Connect>',
            '<Stop><Stream name="fork"/></Stop>',
            '<Pause length="1"/>',
        )
        a.create_number(
            PhoneNumber="7301", isSIP="true", VoiceUrl=webhooks.route("/v", rcml(*verbs))
        )
        time.sleep(0.5)  # the number reaches A's snapshot
        call(a, "7301", tmp_path / "heard.wav", "--seconds", "10")
        [voice] = webhooks.wait_for("/v", 1)
        call_sid = voice.params["CallSid"]
        rows = stream_rows(a, call_sid, 2, lambda: PostgresStore.open(schema_url(schema)))
        assert [(r.name, r.started_by, r.status) for r in rows] == [
            ("fork", "start", "stopped"),
            ("bot", "connect", "stopped"),
        ]
        page = console_page(b, f"/console/calls/{call_sid}")  # node B's console
        table = page.split('<h2 id="streams-heading">Media streams</h2>', 1)[1]
        table = table.split("</table>", 1)[0]
        assert rows[0].sid in table and rows[1].sid in table
    finally:
        b.stop()
        a.stop()
        drop_schema(schema)


def test_a_stream_cut_by_a_crash_ends_with_its_call_at_the_restart(
    webhooks: WebhookServer, dial: str, agent: StreamAgent, tmp_path: Path
) -> None:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_STREAMS_ALLOW_INSECURE="true").start()
    try:
        verbs = (f'<Start><Stream url="{agent.url}" name="fork"/></Start>', '<Pause length="20"/>')
        node.create_number(
            PhoneNumber=dial, isSIP="true", VoiceUrl=webhooks.route(f"/voice/{dial}", rcml(*verbs))
        )

        def caller() -> None:
            with contextlib.suppress(AssertionError):  # its daemon dies: nobody hangs up
                call(node, dial, tmp_path / "heard.wav", "--seconds", "6")

        calling = threading.Thread(target=caller)
        calling.start()
        [voice] = webhooks.wait_for(f"/voice/{dial}", 1)
        call_sid = voice.params["CallSid"]
        deadline = time.monotonic() + 10
        while not agent.events("media"):  # streaming
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the in-progress row is written (a batch every 50 ms)
        node.kill()
        calling.join(20)
        node.start()  # the restart closes the cut call, and its stream with it

        [row] = stream_rows(node, call_sid, 1)
        with node.api() as api:
            record = api.get(f"/Calls/{call_sid}.json").json()
        assert record["status"] == "completed"
        assert (row.name, row.status) == ("fork", "stopped")
        assert row.date_ended is not None and row.date_created <= row.date_ended < time.time()
        ended = email.utils.parsedate_to_datetime(record["end_time"]).timestamp()
        assert row.date_ended == pytest.approx(ended, abs=1.0)
    finally:
        node.stop()
