"""A call's page lists its media streams (the ``streams`` rows of migration 0022), only to
accounts that may see the call; a call without streams has no such section."""

from __future__ import annotations

import html
import re

from console_harness import Console, sign_in

from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.stream_records import StreamRecord


def _stream(account: str, call: str, at: float, **changes: object) -> StreamRecord:
    sid = new_sid("MZ")
    record = StreamRecord(
        sid, account, call, "agent", "wss://agent.example/media", "inbound_track", "connect",
        "stopped", None, None, at, at + 7,
    )  # fmt: skip
    return StreamRecord(**{**{f: getattr(record, f) for f in record.__slots__}, **changes})


def _rows(page: str) -> list[list[str]]:
    section = page.split('id="streams"', 1)[1].split("</table>", 1)[0]
    cells = r"<td[^>]*>(.*?)</td>"
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(cells, row)]
        for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)
        if "<td" in row
    ]


async def test_a_calls_page_lists_its_streams_to_its_account_only(console: Console) -> None:
    alice, alice_token = await console.sub_account("alice")
    bob, _ = await console.sub_account("bob")
    mine = await console.call(alice, "+15105550001")
    theirs = await console.call(bob, "+15105550002")
    plain = await console.call(alice, "+15105550003")
    at = mine.start_time
    connected = _stream(alice, mine.sid, at + 1)
    refused = _stream(
        alice, mine.sid, at + 2, name="transcriber", url="ws://agent.example/plain",
        track="both_tracks", started_by="start", status="failed", error_code=31920,
        error_message="the agent refused the handshake",
    )  # fmt: skip
    running = _stream(alice, mine.sid, at + 3, name="api-one", started_by="api",
                      status="in-progress", date_updated=at + 3)  # fmt: skip
    hidden = _stream(bob, theirs.sid, at + 1, name="bobs-agent")
    await console.store.save_streams([connected, refused, running, hidden])
    async with console.client() as browser:
        await sign_in(browser, alice, alice_token)
        page = await browser.get(f"/console/calls/{mine.sid}")
        assert page.status_code == 200
        assert '<h2 id="streams-heading">Media streams</h2>' in page.text
        assert 'aria-labelledby="streams-heading"' in page.text
        rows = _rows(page.text)
        assert [row[:6] for row in rows] == [
            [connected.sid, "agent", "wss://agent.example/media", "inbound_track",
             "<Connect><Stream>", "stopped"],
            [refused.sid, "transcriber", "ws://agent.example/plain", "both_tracks",
             "<Start><Stream>", "failed"],
            [running.sid, "api-one", "wss://agent.example/media", "inbound_track", "REST API",
             "in-progress"],
        ]  # fmt: skip
        assert rows[0][8] == "" and rows[0][7] != "still running"
        assert rows[1][8] == "31920: the agent refused the handshake"
        assert rows[2][7] == "still running"
        assert hidden.sid not in page.text and "bobs-agent" not in page.text
        other = await browser.get(f"/console/calls/{theirs.sid}")
        assert other.status_code == 403 and hidden.sid not in other.text
        without = await browser.get(f"/console/calls/{plain.sid}")
        assert without.status_code == 200 and "Media streams" not in without.text
    async with console.client() as admin:  # the parent sees its sub-account's call and streams
        await sign_in(admin, console.admin.sid, console.token)
        assert hidden.sid in (await admin.get(f"/console/calls/{theirs.sid}")).text
