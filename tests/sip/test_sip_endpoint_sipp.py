"""SipEndpoint on real sockets, driven by SIPp scenarios (tests/sip/scenarios/)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import uvloop
from sip_harness import FAST, RecordingHandler, address, requires_sipp, run_sipp, wait_for

from rcmlrouter.sip.endpoint import SipEndpoint

pytestmark = requires_sipp


async def test_basic_udp_calls_and_no_leak(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    result = await run_sipp(
        "uac_basic.xml", address(endpoint, "udp"), calls=20, rate=50, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(handler.calls) == 20
    await wait_for(lambda: len(handler.causes) == 20)
    assert handler.acked == [True] * 20 and handler.causes == ["remote-bye"] * 20
    assert endpoint.dialog_count == 0 and endpoint.in_flight == 0
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=6)


async def test_reject_486_with_reason(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    handler.mode = "reject"
    result = await run_sipp("uac_reject.xml", address(endpoint, "udp"), calls=3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert handler.causes == ["rejected"] * 3
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=6)


async def test_cancel_while_ringing(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    handler.mode = "ring"
    result = await run_sipp("uac_cancel.xml", address(endpoint, "udp"), calls=3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert handler.causes == ["cancel"] * 3
    assert endpoint.dialog_count == 0
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=6)


async def test_lost_ack_makes_200_retransmit(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    result = await run_sipp("uac_lost_ack.xml", address(endpoint, "udp"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert handler.acked == [True]
    assert len(handler.calls) == 1
    # 100, 180, 200, then the 200 again at +25, +75, +175, +375 ms before the late ACK; 200 to BYE
    assert endpoint.stats.messages_out >= 7


async def test_ack_never_comes_ends_with_bye(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    result = await run_sipp("uac_no_ack.xml", address(endpoint, "udp"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    await wait_for(lambda: handler.causes == ["ack-timeout"])
    assert handler.acked == [False]


async def test_local_hangup_sends_bye(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    handler.mode = "answer_then_hangup"
    result = await run_sipp("uac_local_bye.xml", address(endpoint, "udp"), calls=3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    await wait_for(lambda: len(handler.causes) == 3)
    assert handler.causes == ["local-bye"] * 3


async def test_options_out_of_dialog(endpoint: SipEndpoint, tmp_path: Path) -> None:
    result = await run_sipp("uac_options.xml", address(endpoint, "udp"), calls=2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


async def test_tcp_calls_and_local_bye_over_the_same_connection(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    target = address(endpoint, "tcp")
    result = await run_sipp("uac_basic.xml", target, transport="t1", calls=5, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    handler.mode = "answer_then_hangup"
    result = await run_sipp("uac_local_bye.xml", target, transport="t1", calls=2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    await wait_for(lambda: len(handler.causes) == 7)
    assert sorted(handler.causes) == ["local-bye"] * 2 + ["remote-bye"] * 5
    await wait_for(lambda: endpoint.transaction_count == 0, timeout=6)


async def test_overload_and_draining_give_503(
    endpoint: SipEndpoint, handler: RecordingHandler, tmp_path: Path
) -> None:
    endpoint.set_draining(True)
    result = await run_sipp("uac_503.xml", address(endpoint, "udp"), calls=2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    endpoint.set_draining(False)
    endpoint.max_transactions = 0
    result = await run_sipp("uac_503.xml", address(endpoint, "udp"), calls=2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert handler.calls == []
    assert endpoint.stats.rejected_overload == 4


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_udp_and_tcp_calls(handler: RecordingHandler, tmp_path: Path) -> None:
    endpoint = SipEndpoint(handler, timers=FAST)
    await endpoint.start(["udp:[::1]:0", "tcp:[::1]:0"])
    try:
        assert [a[1] for a in endpoint.addresses] == ["::1", "::1"]
        for transport, mode in (("udp", "u1"), ("tcp", "t1")):
            result = await run_sipp(
                "uac_basic.xml",
                address(endpoint, transport),
                transport=mode,
                calls=3,
                local_ip="::1",
                cwd=tmp_path,
            )
            assert result.returncode == 0, result.stderr
        await wait_for(lambda: handler.causes == ["remote-bye"] * 6)
    finally:
        await endpoint.stop()


def test_runs_under_uvloop(tmp_path: Path) -> None:
    async def scenario() -> None:
        handler = RecordingHandler(mode="answer_then_hangup")
        endpoint = SipEndpoint(handler, timers=FAST)
        await endpoint.start(["udp:127.0.0.1:0", "tcp:127.0.0.1:0"])
        try:
            for transport, mode in (("udp", "u1"), ("tcp", "t1")):
                result = await run_sipp(
                    "uac_local_bye.xml",
                    address(endpoint, transport),
                    transport=mode,
                    calls=3,
                    cwd=tmp_path,
                )
                assert result.returncode == 0, result.stderr
            await wait_for(lambda: handler.causes == ["local-bye"] * 6)
        finally:
            await endpoint.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
