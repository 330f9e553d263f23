"""A MESSAGE answered 202 is never lost: kill -9 right after a burst of 202s, restart, and every
accepted message reaches its SMS URL (SPEC §5).

The SMS URL answers slowly (0.3 s) so most accepted messages are still unprocessed at the kill.
After the restart: every accepted message has reached the webhook; one that had not reached it
before the kill reaches it exactly once; one whose webhook request was in flight at the kill may
be fetched once more (at-least-once: its "processed" mark died with the process). A re-send of an
accepted message (same Call-ID and CSeq) after the restart is answered 202 and not processed.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from support.daemon import DaemonProcess
from support.rawsip import parse
from support.webhooks import Reply, WebhookServer

pytestmark = [pytest.mark.e2e, pytest.mark.crash]

BURST = 600
DIAL = "66990001"


def _message(port: int, local: int, call_id: str) -> bytes:
    body = call_id.encode()
    return (
        f"MESSAGE sip:{DIAL}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
        f"From: <sip:burst@127.0.0.1:{local}>;tag={call_id[:8]}\r\n"
        f"To: <sip:{DIAL}@127.0.0.1:{port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\n"
        f"Max-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _burst(sock: socket.socket, port: int, call_ids: list[str], seconds: float) -> set[str]:
    """Send every MESSAGE, collect the Call-IDs answered 202 within ``seconds``."""
    local = sock.getsockname()[1]
    for call_id in call_ids:
        sock.sendto(_message(port, local, call_id), ("127.0.0.1", port))
    accepted: set[str] = set()
    deadline = time.monotonic() + seconds
    while len(accepted) < len(call_ids) and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            break
        response = parse(data)
        if response.status == 202:
            accepted.add(response.header("Call-ID") or "")
    return accepted


def test_accepted_messages_survive_kill_9(tmp_path: Path) -> None:
    webhooks = WebhookServer().start()
    daemon = DaemonProcess(tmp_path / "daemon").start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    try:
        url = webhooks.route("/sms", Reply("<Response/>", delay=0.3))
        daemon.create_number(PhoneNumber=DIAL, isSIP="true", SmsUrl=url)
        call_ids = [uuid.uuid4().hex for _ in range(BURST)]
        accepted = _burst(sock, daemon.sip_port, call_ids, seconds=5)
        daemon.kill()  # right after the 202s
        # Requests the dead process sent may still be read by the busy webhook server after the
        # kill: everything recorded before the restart came from the first run.
        time.sleep(0.5)
        restarted_at = time.time()
        assert len(accepted) >= BURST * 0.9, f"only {len(accepted)} of {BURST} accepted"
        first_run = [r for r in webhooks.requests("/sms") if r.at < restarted_at]
        before = Counter(r.params["Body"] for r in first_run)
        unprocessed = accepted - set(before)
        assert unprocessed, "the kill came too late to test recovery"

        daemon.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = {r.params["Body"] for r in webhooks.requests("/sms")}
            if accepted <= seen:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # anything processed twice would show up now
        after = Counter(r.params["Body"] for r in webhooks.requests("/sms") if r.at >= restarted_at)
        total = before + after
        lost = accepted - set(total)
        assert not lost, f"{len(lost)} accepted messages never reached the webhook"
        assert all(after[body] == 1 for body in unprocessed), "unprocessed ones: exactly once"
        assert all(count <= 2 for count in total.values()), "at most one repeat after a crash"
        assert max(before.values(), default=1) == 1
        recovered = daemon.wait_log("messages.recovered", 5)
        assert recovered is not None and recovered["count"] >= len(unprocessed)

        # a re-send of an accepted message after the restart: 202, not processed again
        resend = sorted(accepted)[:5]
        assert _burst(sock, daemon.sip_port, resend, seconds=3) == set(resend)
        time.sleep(0.5)
        again = Counter(r.params["Body"] for r in webhooks.requests("/sms"))
        assert all(again[body] == total[body] for body in resend)
        repeated = sum(after[body] for body in before)
        print(
            f"burst {BURST}, accepted {len(accepted)}, at the webhook before the kill "
            f"{len(before)}, recovered {recovered['count']}, repeated {repeated}"
        )
    finally:
        sock.close()
        daemon.stop()
        webhooks.stop()
