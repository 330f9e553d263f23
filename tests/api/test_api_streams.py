"""``Calls/{CA}/Streams`` on both bases against a real API server and a fake of live call control
(the call side is tested end to end in tests/e2e/test_streams.py, across nodes in
tests/e2e/test_streams_cluster.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_harness import PUBLIC_BASE, Api, start_api

from rcmlrouter.call_updates import (
    APPLIED,
    ENDED,
    NO_STREAM,
    REFUSED,
    UNREACHABLE,
    CallCommand,
    CallUpdate,
    StreamStart,
    UpdateResult,
)
from rcmlrouter.errors import StreamRefusedError

CALL = "CA" + "a" * 32


class LiveCalls:
    """Live call control with one running call, ``CALL`` of the admin account, whose stream
    commands are remembered (as the node that runs it answers them)."""

    def __init__(self) -> None:
        self.account = ""
        self.started: list[StreamStart] = []
        self.refuse: StreamRefusedError | None = None
        self.unreachable = False

    async def update(self, call_sid: str, owner: str | None, update: CallUpdate) -> UpdateResult:
        raise AssertionError("not an update")

    async def command(self, call_sid: str, owner: str | None, command: CallCommand) -> UpdateResult:
        assert owner is None  # the call has no record: this process is asked
        if self.unreachable:
            return UpdateResult(UNREACHABLE, "node-b is silent for 12.0 s")
        if call_sid != CALL or getattr(command, "account_sid", None) != self.account:
            return UpdateResult(ENDED, "the call is not running")
        description = {"sid": "MZ" + "1" * 32, "account_sid": self.account, "call_sid": call_sid,
                       "name": "bot", "date_updated": "2026-12-06T00:00:00+00:00"}  # fmt: skip
        if isinstance(command, StreamStart):
            if self.refuse is not None:
                return UpdateResult(REFUSED, str(self.refuse), code=self.refuse.error_code)
            self.started.append(command)
            name = command.name or description["sid"]
            return UpdateResult(APPLIED, result={**description, "name": name,
                                                 "status": "in-progress"})  # fmt: skip
        assert not isinstance(command, CallUpdate)
        if command.ref not in ("bot", "MZ" + "1" * 32):
            return UpdateResult(NO_STREAM, f"no stream {command.ref!r}")
        return UpdateResult(APPLIED, result={**description, "status": "stopped"})


@pytest.fixture
async def live() -> LiveCalls:
    return LiveCalls()


@pytest.fixture
async def api(tmp_path: Path, live: LiveCalls) -> AsyncIterator[Api]:
    async for value in start_api(tmp_path, public_base_url=PUBLIC_BASE, call_control=live):
        live.account = value.admin.sid
        yield value


def twilio(api: Api, path: str) -> str:
    return f"{api.root}/2010-04-01/Accounts/{api.admin.sid}/{path}"


async def test_create_on_the_twilio_base_with_parameters(api: Api, live: LiveCalls) -> None:
    form = {
        "Url": "wss://agent.example.com/ws",
        "Name": "bot",
        "Track": "both_tracks",
        "StatusCallback": "/events",
        "StatusCallbackMethod": "get",
        "Parameter1.Name": "lang",
        "Parameter1.Value": "fr",
        "Parameter2.Name": "who",
        "Parameter2.Value": "me",
    }
    response = await api.client.post(
        twilio(api, f"Calls/{CALL}/Streams.json"), data=form, auth=api.auth
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "in-progress" and body["name"] == "bot"
    assert (
        body["uri"]
        == f"/2010-04-01/Accounts/{api.admin.sid}/Calls/{CALL}/Streams/{body['sid']}.json"
    )
    [stream] = live.started
    assert stream == StreamStart(
        api.admin.sid, "wss://agent.example.com/ws", "bot", "both_tracks", f"{PUBLIC_BASE}/events",
        "GET", (("lang", "fr"), ("who", "me")),
    )  # fmt: skip


async def test_stop_on_the_restcomm_base_by_name_and_in_xml(api: Api) -> None:
    stop = {"Status": "stopped"}
    response = await api.client.post(api.url(f"Calls/{CALL}/Streams/bot"), data=stop, auth=api.auth)
    assert response.status_code == 200, response.text
    assert "<Status>stopped</Status>" in response.text
    unknown = await api.client.post(
        api.url(f"Calls/{CALL}/Streams/nope.json"), data=stop, auth=api.auth
    )
    assert unknown.status_code == 404
    bad = await api.client.post(
        api.url(f"Calls/{CALL}/Streams/bot.json"), data={"Status": "paused"}, auth=api.auth
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({}, 20001),
        ({"Url": "https://agent.example.com/"}, 20001),
        ({"Url": "wss://agent.example.com/", "Track": "left"}, 20001),
        ({"Url": "wss://agent.example.com/", "StatusCallback": "ftp://x/"}, 21502),
        ({"Url": "wss://agent.example.com/", "StatusCallbackMethod": "PUT"}, 21503),
    ],
)
async def test_bad_requests_are_400_with_a_code(api: Api, form: dict[str, str], code: int) -> None:
    response = await api.client.post(
        api.url(f"Calls/{CALL}/Streams.json"), data=form, auth=api.auth
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


async def test_a_call_not_running_here_is_404_and_refusals_are_400(
    api: Api, live: LiveCalls
) -> None:
    form = {"Url": "wss://agent.example.com/"}
    other = "CA" + "b" * 32
    response = await api.client.post(
        api.url(f"Calls/{other}/Streams.json"), data=form, auth=api.auth
    )
    assert response.status_code == 404 and response.json()["code"] == 20404
    live.refuse = StreamRefusedError("more than 4 streams", 31940)
    response = await api.client.post(
        api.url(f"Calls/{CALL}/Streams.json"), data=form, auth=api.auth
    )
    assert response.status_code == 400 and response.json()["code"] == 31940


async def test_another_accounts_call_is_not_found(api: Api) -> None:
    sub, token = await api.sub_account()
    response = await api.client.post(
        api.url(f"Calls/{CALL}/Streams.json", sub), data={"Url": "wss://a.example/"},
        auth=(sub, token),
    )  # fmt: skip
    assert response.status_code == 404


async def test_an_unreachable_node_is_503_with_retry_after(api: Api, live: LiveCalls) -> None:
    live.unreachable = True
    response = await api.client.post(
        api.url(f"Calls/{CALL}/Streams/bot.json"), data={"Status": "stopped"}, auth=api.auth
    )
    assert response.status_code == 503 and response.json()["code"] == 20503
    assert response.headers["Retry-After"] == "1"
