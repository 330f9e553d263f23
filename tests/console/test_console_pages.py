"""The pages show what the API's code answers: numbers, explanations, logs, calls, health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from console_harness import Console, csrf_of, sign_in, start_console

from rcmlrouter.call_updates import APPLIED, CallUpdate, UpdateResult
from rcmlrouter.console import logs
from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import MessageRecord, Notification, OutboxEvent


@contextlib.asynccontextmanager
async def _signed_in(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as the administrator."""
    async with console.client() as browser:
        assert (await sign_in(browser, console.admin.sid, console.token)).status_code == 303
        yield browser


async def test_numbers_are_created_edited_and_released_through_the_api(console: Console) -> None:
    async with _signed_in(console) as browser:
        token = await csrf_of(browser, "/console/numbers/new")
        bad = await browser.post(
            "/console/numbers/new", data={"csrf_token": token, "isSIP": "true", "PhoneNumber": ".*"}
        )
        assert bad.status_code == 400 and "Error 21505" in bad.text and 'value=".*"' in bad.text
        taken = await browser.post(
            "/console/numbers/new",
            data={
                "csrf_token": token,
                "isSIP": "true",
                "PhoneNumber": "^555.*",
                "VoiceUrl": "ftp://x",
            },
        )
        assert taken.status_code == 400 and "Error 21502" in taken.text
        made = await browser.post(
            "/console/numbers/new",
            data={
                "csrf_token": token,
                "isSIP": "true",
                "PhoneNumber": "^555.*",
                "VoiceUrl": "http://hooks.example/v",
            },
        )
        assert made.status_code == 303
        sid = made.headers["Location"].split("/")[-1].split("?")[0]
        number = await console.store.get_number(sid)
        assert number.phone_number == "^555.*" and number.voice_url == "http://hooks.example/v"
        edit = await browser.get(made.headers["Location"])
        assert "Done: created" in edit.text
        saved = await browser.post(
            f"/console/numbers/{sid}",
            data={
                "csrf_token": token,
                "FriendlyName": "pattern",
                "VoiceUrl": "",
                "SmsUrl": "http://hooks.example/s",
            },
        )
        assert saved.status_code == 303
        number = await console.store.get_number(sid)
        assert (number.friendly_name, number.voice_url, number.sms_url) == (
            "pattern",
            None,
            "http://hooks.example/s",
        )
        long_name = await browser.post(
            f"/console/numbers/{sid}", data={"csrf_token": token, "FriendlyName": "x" * 65}
        )
        assert long_name.status_code == 400 and "Error 21506" in long_name.text
        listed = await browser.get("/console/numbers", params={"FriendlyName": "pattern"})
        assert "^555.*" in listed.text and "1 number;" in listed.text
        gone = await browser.post(f"/console/numbers/{sid}/release", data={"csrf_token": token})
        assert gone.status_code == 303 and "released" in gone.headers["Location"]
        assert (await browser.get(f"/console/numbers/{sid}")).status_code == 404


async def test_buying_from_the_inventory_by_area_code(console: Console) -> None:
    async with _signed_in(console) as browser:
        search = await browser.get("/console/numbers/new", params={"AreaCode": "510"})
        offered = re.findall(r'name="PhoneNumber" value="(\+1510\d+)"', search.text)
        assert "+15105555555" in offered
        bad = await browser.get("/console/numbers/new", params={"AreaCode": "05"})
        assert "Error 21451" in bad.text
        token = await csrf_of(browser, "/console/numbers/new")
        bought = await browser.post(
            "/console/numbers/new", data={"csrf_token": token, "PhoneNumber": offered[0]}
        )
        assert bought.status_code == 303
        again = await browser.post(
            "/console/numbers/new", data={"csrf_token": token, "PhoneNumber": offered[0]}
        )
        assert again.status_code == 400 and "Error 21422" in again.text


async def test_the_pattern_check_is_the_apis(console: Console) -> None:
    async with _signed_in(console) as browser:
        ok = (
            await browser.get("/console/numbers/check", params={"PhoneNumber": "^+1650.*"})
        ).json()
        assert ok["ok"] and "regex" in ok["message"]
        empty = (await browser.get("/console/numbers/check", params={"PhoneNumber": "$"})).json()
        assert (empty["ok"], empty["code"]) == (False, 21505)
        backref = (
            await browser.get("/console/numbers/check", params={"PhoneNumber": r"(1)\1"})
        ).json()
        assert backref["code"] == 21505 and "backreference" in backref["message"]


async def test_a_new_number_wins_in_the_explanation_and_others_stay_anonymous(
    console: Console,
) -> None:
    bob, bob_token = await console.sub_account("bob")
    await console.api_post(
        f"Accounts/{bob}/IncomingPhoneNumbers.json",
        (bob, bob_token),
        PhoneNumber="^7.*",
        isSIP="true",
    )
    alice, alice_token = await console.sub_account("alice")
    mine = await console.api_post(
        f"Accounts/{alice}/IncomingPhoneNumbers.json",
        (alice, alice_token),
        PhoneNumber="^77.*",
        isSIP="true",
    )
    async with console.client() as browser:
        await sign_in(browser, alice, alice_token)
        page = (await browser.get("/console/explain", params={"dialed": "7-7-1 2"})).text
        assert "answers <code>7712</code> (regex match)" in page
        assert mine["sid"] in page and "^7.*" not in page and "A number of another account" in page
        winner = re.search(r'data-outcome="winner">(.*?)</li>', page, re.S)
        assert winner is not None and "longest pattern" in winner.group(1)
        nothing = (await browser.get("/console/explain", params={"dialed": "999"})).text
        assert "No number answers" in nothing and "404" in nothing
        other = (
            await browser.get(
                "/console/explain", params={"dialed": "7712", "domain": "unknown.example"}
            )
        ).text
        assert "not an organization" in other


async def test_call_and_message_logs_filter_with_the_api_rules(console: Console) -> None:
    day = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    for i in range(60):
        await console.call(
            console.admin.sid, "+15105550001" if i % 2 else "+15105550002", start_time=day + i
        )
    await console.store.record_messages(
        [
            MessageRecord(
                new_sid("SM"),
                console.admin.sid,
                None,
                "alice",
                "+1510",
                f"hi {i}",
                "inbound",
                "received",
                day + i,
            )
            for i in range(3)
        ]
    )
    async with _signed_in(console) as browser:
        first = await browser.get("/console/calls", params={"To": "+15105550001"})
        assert first.text.count("+15105550001") >= 30 and "+15105550002</td>" not in first.text
        everything = await browser.get("/console/calls")
        older = re.search(r'href="([^"]+)" rel="next"', everything.text)
        assert older is not None and "Before=" in older.group(1)
        rest = await browser.get(older.group(1).replace("&amp;", "&"))
        assert rest.status_code == 200 and rest.text.count("<tr>") == 1 + 10
        none = await browser.get("/console/calls", params={"StartTime>": "2023-11-16"})
        assert "No calls match" in none.text
        bad = await browser.get("/console/calls", params={"StartTime": "yesterday"})
        assert bad.status_code == 400 and "Error 20001" in bad.text
        messages = await browser.get("/console/messages", params={"DateSent": "2023-11-15"})
        assert "hi 2" in messages.text and "hi 0" in messages.text


async def test_a_calls_page_shows_webhooks_callbacks_and_notifications(console: Console) -> None:
    call = await console.call(
        console.admin.sid,
        "+15105550001",
        used_fallback=True,
        error_code=11200,
        status_callback="http://hooks.example/status",
        next_sequence=3,
    )
    await console.store.add_notifications(
        [
            Notification(
                new_sid("NO"),
                console.admin.sid,
                call.sid,
                11200,
                "error",
                "HTTP 500 from the voice URL",
                "http://hooks.example/voice",
                call.start_time,
            )
        ]
    )
    await console.store.enqueue_callbacks(
        [
            OutboxEvent(
                None,
                call.sid,
                console.admin.sid,
                2,
                "http://hooks.example/status",
                "POST",
                {},
                0,
                0.0,
                call.start_time,
            )
        ]
    )
    room = ConferenceRecord(new_sid("CF"), console.admin.sid, "support-room", "in-progress",
                            "node-a", call.start_time, call.start_time)  # fmt: skip
    await console.store.claim_conference(room)
    await console.store.save_conference_rows([], [ParticipantRecord(
        room.sid, call.sid, console.admin.sid, "connected", True, False, True, False,
        call.start_time, call.start_time)])  # fmt: skip
    console.sources.attempts.add(call.sid, 0, "http://hooks.example/status", 1, None)
    console.sources.attempts.add(call.sid, 2, "http://hooks.example/status", 1, "HTTP 503")
    async with _signed_in(console) as browser:
        page = (await browser.get(f"/console/calls/{call.sid}")).text
        assert (
            "http://hooks.example/voice" in page and "Fallback used: <strong>yes</strong>" in page
        )
        assert "HTTP 500 from the voice URL" in page
        rows = re.findall(r"<tr>\s*<td>(\d)</td>\s*<td>([^<]+)</td>", page)
        assert rows == [
            ("0", "delivered"),
            ("1", "sent (no detail on this node)"),
            ("2", "pending"),
        ]
        assert "HTTP 503" in page
        conference_row = re.search(
            r"<td>(CF\w+)</td><td>support-room</td><td>in-progress</td>"
            r"<td>node-a</td><td>[^<]*</td><td>connected, muted</td>",
            page,
        )
        assert conference_row is not None and conference_row.group(1) == room.sid


async def test_live_calls_stream_and_the_controls_wait_for_the_live_call_api(
    console: Console,
) -> None:
    live = await console.call(
        console.admin.sid, "+15105550009", status="in-progress", end_time=None, duration=None
    )
    async with _signed_in(console) as browser:
        page = (await browser.get(f"/console/calls/{live.sid}")).text
        assert "not available in this process" in page and page.count("disabled") >= 4
        assert "Hang up CA" not in (await browser.get("/console/live")).text
        async with browser.stream("GET", "/console/live/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            event = await asyncio.wait_for(lines.__anext__(), 5)
            data = await asyncio.wait_for(lines.__anext__(), 5)
            assert event == "event: calls" and data.startswith("data: ")
            body = data
            while live.sid not in body:
                body += await asyncio.wait_for(lines.__anext__(), 5)
        token = await csrf_of(browser, f"/console/calls/{live.sid}")
        tried = await browser.post(
            f"/console/calls/{live.sid}/control", data={"csrf_token": token, "action": "hangup"}
        )
        assert "20503" in tried.headers["Location"]  # the API's refusal, shown on the page


class RecordingControl:
    """The API's CallControl, recording what the console's buttons send."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, CallUpdate]] = []

    async def update(self, call_sid: str, owner: str | None, update: CallUpdate) -> UpdateResult:
        self.updates.append((call_sid, update))
        return UpdateResult(APPLIED)


async def test_the_controls_are_the_apis_own_update(tmp_path: Path) -> None:
    control = RecordingControl()
    async for console in start_console(tmp_path, call_control=control):
        live = await console.call(
            console.admin.sid, "+1510", status="in-progress", end_time=None, duration=None
        )
        async with _signed_in(console) as browser:
            page = (await browser.get(f"/console/calls/{live.sid}")).text
            assert "not available in this process" not in page and "disabled" not in page
            listing = (await browser.get("/console/live")).text
            assert f'aria-label="Hang up {live.sid}"' in listing  # a button on its live row
            token = await csrf_of(browser, f"/console/calls/{live.sid}")
            hung_up = await browser.post(
                f"/console/calls/{live.sid}/control", data={"csrf_token": token, "action": "hangup"}
            )
            assert "hung+up" in hung_up.headers["Location"]
            form = {"csrf_token": token, "action": "redirect", "Url": "/demos/hello.xml"}
            done = await browser.post(
                f"/console/calls/{live.sid}/control", data={**form, "Method": "GET"}
            )
            assert "redirected" in done.headers["Location"]
            refused = await browser.post(
                f"/console/calls/{live.sid}/control", data={**form, "Url": "ftp://x/y"}
            )
            assert "21205" in refused.headers["Location"]  # the API's validation and code
            missing = await browser.post(
                f"/console/calls/{live.sid}/control", data={"action": "hangup"}
            )
            assert missing.status_code == 403  # no CSRF token
        assert control.updates == [
            (live.sid, CallUpdate(status="completed", base_url="http://127.0.0.1:8080")),
            (
                live.sid,
                CallUpdate(
                    url="http://127.0.0.1:8080/demos/hello.xml",
                    method="GET",
                    base_url="http://127.0.0.1:8080",
                ),
            ),
        ]


async def test_health_shows_this_node_and_samples_metrics(console: Console) -> None:
    async with _signed_in(console) as browser:
        page = (await browser.get("/console/health")).text
        assert 'data-chart="calls"' in page and "<td>test</td>" in page
        async with browser.stream("GET", "/console/health/stream") as stream:
            lines = stream.aiter_lines()
            assert await asyncio.wait_for(lines.__anext__(), 5) == "event: sample"
            sample = json.loads(
                (await asyncio.wait_for(lines.__anext__(), 5)).removeprefix("data: ")
            )
        assert set(sample["nodes"]["this node"]) >= {
            "calls",
            "messages",
            "rejected",
            "lag_sum",
            "outbox",
        }


async def test_accounts_are_created_suspended_and_rotated_through_the_api(console: Console) -> None:
    async with _signed_in(console) as browser:
        token = await csrf_of(browser, "/console/accounts")
        short = await browser.post(
            "/console/accounts",
            data={
                "csrf_token": token,
                "FriendlyName": "f",
                "EmailAddress": "f@example.com",
                "Password": "short",
            },
        )
        assert short.status_code == 400 and "Password" in short.text
        made = await browser.post(
            "/console/accounts", data={"csrf_token": token, "FriendlyName": "frank"}
        )
        assert made.status_code == 200
        sid = re.search(
            r"AuthToken of <strong>frank</strong> <code>(AC\w+)</code>", made.text
        ).group(1)  # type: ignore[union-attr]
        first_token = re.search(r'id="revealed-token">(\w+)<', made.text).group(1)  # type: ignore[union-attr]
        suspended = await browser.post(
            f"/console/accounts/{sid}", data={"csrf_token": token, "Status": "suspended"}
        )
        assert "frank is suspended" in suspended.text
        assert (await console.store.get_account(sid)).status == "suspended"
        own = await browser.post(
            f"/console/accounts/{console.admin.sid}",
            data={"csrf_token": token, "Status": "suspended"},
        )
        assert own.status_code == 403 and "own Status" in own.text
        back = await browser.post(
            f"/console/accounts/{sid}", data={"csrf_token": token, "Status": "active"}
        )
        assert "frank is active" in back.text
        rotated = await browser.post(
            f"/console/accounts/{sid}", data={"csrf_token": token, "AuthToken": "rotate"}
        )
        new_token = re.search(r'id="revealed-token">(\w+)<', rotated.text).group(1)  # type: ignore[union-attr]
        assert (
            new_token != first_token
            and (await console.store.get_account(sid)).auth_token == new_token
        )


async def test_a_number_filter_searches_a_bounded_depth_and_goes_on(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "SEARCH_DEPTH", 10)
    day = 1_700_006_400.0
    made = [
        await console.call(console.admin.sid, "+1510000000" + str(i % 3), start_time=day + i // 2)
        for i in range(60)
    ]
    wanted = {c.sid for c in made if c.to == "+15100000002"}
    seen: list[str] = []
    async with _signed_in(console) as browser:
        url = "/console/calls?To=%2B15100000002"
        for _ in range(20):
            page = (await browser.get(url)).text
            seen += re.findall(r'href="/console/calls/(CA\w+)"', page)
            older = re.search(r'href="([^"]+)" rel="next"', page)
            if older is None:
                break
            assert "Searched the calls back to" in page
            url = older.group(1).replace("&amp;", "&")
    assert sorted(seen) == sorted(wanted) and len(seen) == len(set(seen)) == 20


async def test_explanations_use_the_accounts_own_organization_or_the_domain_given(
    console: Console,
) -> None:
    await console.store.add_organization("b.example")
    await console.sources.directory.refresh_organizations()
    await console.api_post(
        f"Accounts/{console.admin.sid}/IncomingPhoneNumbers.json",
        (console.admin.sid, console.token),
        PhoneNumber="5151",
        isSIP="true",
    )
    async with _signed_in(console) as browser:
        own = (await browser.get("/console/explain", params={"dialed": "5151"})).text
        assert "answers <code>5151</code> (exact match)" in own
        other = (
            await browser.get("/console/explain", params={"dialed": "5151", "domain": "B.example"})
        ).text
        assert "No number answers" in other and "Organization b.example." in other
