"""Outgoing calls (SipEndpoint.start_call) against SIPp callees on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sip_harness import requires_sipp, wait_for
from uac_harness import SippUas, call, tables_empty

from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.message import SipResponse

pytestmark = requires_sipp


async def test_answered_then_our_bye(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_answer.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        progress: list[SipResponse] = []
        outgoing.on_progress(progress.append)
        result = await asyncio.wait_for(outgoing.result, 5)
        assert result.status == 200 and outgoing.answered
        assert [r.status for r in progress] == [180]
        assert outgoing.remote_sdp is not None and b"m=audio" in outgoing.remote_sdp
        assert endpoint.dialog_count == 1
        await outgoing.hangup()
        assert outgoing.ended.result() == "local-bye"
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)
