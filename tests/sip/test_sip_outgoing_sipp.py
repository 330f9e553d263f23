"""Outgoing calls (SipEndpoint.start_call) against SIPp callees on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sip_harness import SDP_OFFER, requires_sipp, wait_for
from uac_harness import SippUas, call, tables_empty

from rcmlrouter.sip.call import IncomingRequest
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


async def test_callee_hangs_up(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_remote_bye.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 200
        assert await asyncio.wait_for(outgoing.ended, 5) == "remote-bye"
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_busy_is_acked_in_the_transaction(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_busy.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        result = await asyncio.wait_for(outgoing.result, 5)
        assert (result.status, result.reason) == (486, "Busy Here")
        assert outgoing.ended.result() == "rejected" and not outgoing.answered
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_ring_timeout_cancels_and_487_ends_it(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_ring_cancel.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri, ring_timeout=0.5)
        assert await asyncio.wait_for(outgoing.ended, 5) == "timeout"
        assert outgoing.result.result().status == 487
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_cancel_by_the_application(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_ring_cancel.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        ringing = asyncio.get_running_loop().create_future()
        outgoing.on_progress(lambda r: ringing.done() or ringing.set_result(r.status))
        assert await asyncio.wait_for(ringing, 5) == 180
        await asyncio.wait_for(outgoing.hangup(), 5)  # not answered: CANCEL
        assert outgoing.ended.result() == "cancel"
        assert outgoing.result.result().status == 487
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_early_media_183_with_sdp(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_early_media.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        progress: list[SipResponse] = []
        outgoing.on_progress(progress.append)
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 200
        assert [r.status for r in progress] == [183]
        assert progress[0].content_type == "application/sdp" and b"m=audio" in progress[0].body
        await outgoing.hangup()
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_proxy_challenge_answered_once(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_auth_407.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri, credentials=("trunkuser", "trunkpass"))
        result = await asyncio.wait_for(outgoing.result, 5)
        assert result.status == 200, result
        assert outgoing.request.cseq == (2, "INVITE")
        assert (outgoing.request.get("Proxy-Authorization") or "").startswith("Digest ")
        await outgoing.hangup()
        assert outgoing.ended.result() == "local-bye"
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_www_challenge_with_qop_verified_by_the_callee(
    endpoint: SipEndpoint, tmp_path: Path
) -> None:
    async with SippUas("uas_auth_401.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri, credentials=("trunkuser", "trunkpass"))
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 200  # SIPp verifyauth
        assert "qop=auth" in (outgoing.request.get("Authorization") or "")
        await outgoing.hangup()
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_wrong_password_gets_the_second_answer(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_auth_401.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri, credentials=("trunkuser", "wrong"))
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 403
        assert outgoing.ended.result() == "rejected"
        rc, logs = await uas.finish()
        assert rc == 0, logs


async def test_without_credentials_407_is_final(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_auth_407.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 407
        assert outgoing.ended.result() == "rejected"


async def test_callee_reinvite_goes_to_the_application(
    endpoint: SipEndpoint, tmp_path: Path
) -> None:
    async with SippUas("uas_reinvite.xml", tmp_path) as uas:
        outgoing = call(endpoint, uas.uri)
        offers: list[bytes] = []

        def on_reinvite(request: IncomingRequest) -> None:
            offers.append(request.request.body)
            answer = SDP_OFFER.replace("a=rtpmap:101", "a=recvonly\r\na=rtpmap:101")
            request.respond(200, body=answer.encode(), content_type="application/sdp")

        outgoing.on_reinvite(on_reinvite)
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 200
        await wait_for(lambda: bool(offers))
        assert b"a=sendonly" in offers[0]
        await asyncio.sleep(0.2)  # the ACK of our 200
        await outgoing.hangup()
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)


async def test_tcp_call(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with SippUas("uas_answer.xml", tmp_path, transport="t1") as uas:
        outgoing = call(endpoint, uas.uri)
        assert (await asyncio.wait_for(outgoing.result, 5)).status == 200
        assert outgoing.request.top_via.transport == "TCP"
        await outgoing.hangup()
        assert outgoing.ended.result() == "local-bye"
        rc, logs = await uas.finish()
        assert rc == 0, logs
    await wait_for(lambda: tables_empty(endpoint), timeout=6)
