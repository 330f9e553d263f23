"""``Calls/{CA}/Streams`` on both bases against a real API server and a fake of the running
calls (the call side is tested end to end in tests/e2e/test_streams.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from api_harness import PUBLIC_BASE, Api, start_api

from rcmlrouter.errors import StreamRefusedError
from rcmlrouter.rcml.model import Stream

CALL = "CA" + "a" * 32


class LiveCalls:
    """One running call, ``CALL`` of the admin account, whose streams are remembered."""

    def __init__(self) -> None:
        self.account = ""
        self.started: list[Stream] = []
        self.refuse: StreamRefusedError | None = None

    def start_stream(
        self, account_sid: str, call_sid: str, stream: Stream
    ) -> Mapping[str, str] | None:
        if call_sid != CALL or account_sid != self.account:
            return None
        if self.refuse is not None:
            raise self.refuse
        self.started.append(stream)
        return {"sid": "MZ" + "1" * 32, "account_sid": account_sid, "call_sid": call_sid,
                "name": stream.name or "MZ" + "1" * 32, "status": "in-progress",
                "date_updated": "2026-12-06T00:00:00+00:00"}  # fmt: skip

    def stop_stream(self, account_sid: str, call_sid: str, ref: str) -> Mapping[str, str] | None:
        if call_sid != CALL or account_sid != self.account:
            return None
        if ref not in ("bot", "MZ" + "1" * 32):
            raise LookupError(ref)
        return {"sid": "MZ" + "1" * 32, "account_sid": account_sid, "call_sid": call_sid,
                "name": "bot", "status": "stopped", "date_updated": "2026-12-06"}  # fmt: skip


@pytest.fixture
async def live() -> LiveCalls:
    return LiveCalls()


@pytest.fixture
async def api(tmp_path: Path, live: LiveCalls) -> AsyncIterator[Api]:
    async for value in start_api(tmp_path, public_base_url=PUBLIC_BASE, call_streams=live):
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
    assert stream == Stream(
        "wss://agent.example.com/ws", "bot", "both_tracks", f"{PUBLIC_BASE}/events", "GET",
        (("lang", "fr"), ("who", "me")),
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
