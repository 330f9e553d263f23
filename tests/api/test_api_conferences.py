"""Conferences and Participants over real HTTP on both bases: lists and filters, reads,
Status=completed, mute / hold / kick through the node's control, ownership, coded errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from api_harness import Api

from rcmlrouter.api import create_api_app
from rcmlrouter.api.conferences import CONFERENCES_KEY
from rcmlrouter.api.protocol_errors import ApiRunner
from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.sqlite import SqliteStore

DAY = 1_700_000_000.0  # 2023-11-14


class Control:
    """This node's live rooms, as the API sees them: ``live`` conference sids."""

    node_id = "n1"

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.live: dict[str, ConferenceRecord] = {}
        self.people: dict[tuple[str, str], ParticipantRecord] = {}
        self.calls: list[tuple[str, ...]] = []

    def end(self, conference_sid: str) -> ConferenceRecord | None:
        record = self.live.pop(conference_sid, None)
        self.calls.append(("end", conference_sid))
        return replace(record, status="completed") if record else None

    def update_participant(self, conference_sid, call_sid, *, muted=None, hold=None,
                           hold_url=None, hold_method="GET"):  # fmt: skip
        self.calls.append(("update", call_sid, str(muted), str(hold), str(hold_url), hold_method))
        row = self.people.get((conference_sid, call_sid))
        if row is None or conference_sid not in self.live:
            return None
        return replace(row, muted=bool(muted), hold=bool(hold))

    def kick(self, conference_sid: str, call_sid: str) -> bool:
        self.calls.append(("kick", call_sid))
        return conference_sid in self.live


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Api, Control]]:
    store = await SqliteStore.open(tmp_path / "rcmlrouter.db")
    admin, token = await store.ensure_default_setup()
    assert token is not None
    control = Control(store)
    app = create_api_app(store, public_base_url="http://127.0.0.1:8080")
    app[CONFERENCES_KEY] = control
    runner = ApiRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with httpx.AsyncClient(timeout=10) as client:
        yield Api(client, f"http://127.0.0.1:{port}", store, admin, token), control
    await runner.cleanup()
    await store.close()


async def rooms(api: Api, control: Control) -> tuple[ConferenceRecord, ConferenceRecord, str]:
    ac = api.admin.sid
    old = ConferenceRecord(new_sid("CF"), ac, "alpha", "completed", "n1", DAY, DAY, "x")
    live = ConferenceRecord(
        new_sid("CF"), ac, "beta", "in-progress", "n1", DAY + 86400, DAY + 86400
    )
    call = new_sid("CA")
    person = ParticipantRecord(live.sid, call, ac, "connected", False, False, True, False,
                               time.time(), time.time())  # fmt: skip
    await api.store.save_conference_rows([old, live], [person])
    control.live[live.sid] = live
    control.people[(live.sid, call)] = person
    return old, live, call


@pytest.mark.parametrize("base", ["/restcomm/2012-04-24", "/2010-04-01"])
async def test_lists_filters_and_reads(api: tuple[Api, Control], base: str) -> None:
    client, auth = api[0].client, api[0].auth
    old, live, call = await rooms(*api)
    root = f"{api[0].root}{base}/Accounts/{api[0].admin.sid}/Conferences"
    listed = (await client.get(f"{root}.json", auth=auth)).json()
    assert [c["sid"] for c in listed["conferences"]] == [live.sid, old.sid]
    done = (await client.get(f"{root}.json?Status=completed", auth=auth)).json()
    assert [c["sid"] for c in done["conferences"]] == [old.sid]
    named = (await client.get(f"{root}.json?FriendlyName=beta", auth=auth)).json()
    assert [c["sid"] for c in named["conferences"]] == [live.sid]
    day = (await client.get(f"{root}.json?DateCreated=2023-11-14", auth=auth)).json()
    assert [c["sid"] for c in day["conferences"]] == [old.sid]
    bad = await client.get(f"{root}.json?Status=running", auth=auth)
    assert bad.status_code == 400 and bad.json()["code"] == 20001
    one = (await client.get(f"{root}/{live.sid}.json", auth=auth)).json()
    assert one["friendly_name"] == "beta" and one["status"] == "in-progress"
    assert one["subresource_uris"]["participants"].endswith(f"{live.sid}/Participants.json")
    people = (await client.get(f"{root}/{live.sid}/Participants.json", auth=auth)).json()
    assert [p["call_sid"] for p in people["participants"]] == [call]
    muted = await client.get(f"{root}/{live.sid}/Participants.json?Muted=true", auth=auth)
    assert muted.json()["participants"] == []
    bad = await client.get(f"{root}/{live.sid}/Participants.json?Hold=maybe", auth=auth)
    assert bad.status_code == 400 and bad.json()["code"] == 20001
    xml = await client.get(f"{root}/{live.sid}/Participants/{call}", auth=auth)
    assert xml.status_code == 200 and "<Participant>" in xml.text
    none = (await client.get(f"{root}/{live.sid}/Recordings.json", auth=auth)).json()
    assert none["recordings"] == []
    missing = await client.get(f"{root}/CF{'0' * 32}.json", auth=auth)
    assert missing.status_code == 404 and missing.json()["code"] == 20404


async def test_changes_go_to_the_live_room(api: tuple[Api, Control]) -> None:
    harness, control = api
    client, auth = harness.client, harness.auth
    old, live, call = await rooms(harness, control)
    root = harness.url("Conferences")
    muted = await client.post(
        f"{root}/{live.sid}/Participants/{call}.json",
        data={"Muted": "true", "Hold": "true", "HoldUrl": "/hold.xml", "HoldMethod": "post"},
        auth=auth,
    )
    assert muted.status_code == 200 and muted.json()["muted"] is True, muted.text
    assert control.calls[-1] == (
        "update",
        call,
        "True",
        "True",
        "http://127.0.0.1:8080/hold.xml",
        "POST",
    )
    bad = await client.post(
        f"{root}/{live.sid}/Participants/{call}.json", data={"Muted": "maybe"}, auth=auth
    )
    assert bad.status_code == 400 and bad.json()["code"] == 20001
    assert (
        await client.delete(f"{root}/{live.sid}/Participants/{call}.json", auth=auth)
    ).status_code == 204
    wrong = await client.post(f"{root}/{live.sid}.json", data={"Status": "in-progress"}, auth=auth)
    assert wrong.status_code == 400
    ended = await client.post(f"{root}/{live.sid}.json", data={"Status": "completed"}, auth=auth)
    assert ended.status_code == 200 and ended.json()["status"] == "completed"
    # over already: answered as it is, nothing asked of the rooms
    calls = len(control.calls)
    again = await client.post(f"{root}/{old.sid}.json", data={"Status": "completed"}, auth=auth)
    assert again.status_code == 200 and len(control.calls) == calls
    # live on another node (not in this node's rooms): 409 naming it
    other = ConferenceRecord(
        new_sid("CF"), harness.admin.sid, "gamma", "in-progress", "n2", DAY, DAY
    )
    await harness.store.save_conference_rows([other], [])
    elsewhere = await client.post(
        f"{root}/{other.sid}.json", data={"Status": "completed"}, auth=auth
    )
    assert elsewhere.status_code == 409 and "n2" in elsewhere.json()["message"]


async def test_another_account_is_refused(api: tuple[Api, Control]) -> None:
    harness, control = api
    _, live, _call = await rooms(harness, control)
    sub_sid, sub_token = await harness.sub_account()
    url = harness.url(f"Conferences/{live.sid}.json", sub_sid)
    refused = await harness.client.get(url, auth=(sub_sid, sub_token))
    assert refused.status_code == 403 and refused.json()["code"] == 20403
