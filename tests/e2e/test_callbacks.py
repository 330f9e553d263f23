"""Status callbacks survive an unavailable receiver and a kill -9 of the daemon."""

from __future__ import annotations

import itertools
import time

import pytest

from support.daemon import DaemonProcess
from support.ports import free_port
from support.sipp import run_sipp, scenario, start_call
from support.webhooks import Recorded, Reply, WebhookServer, rcml

pytestmark = pytest.mark.e2e


def delivered(requests: list[Recorded], answered: set[int]) -> list[Recorded]:
    return [r for i, r in enumerate(requests) if i in answered]


def test_callbacks_wait_for_a_receiver_that_was_down(daemon, webhooks, workdir, dial) -> None:
    counter = itertools.count()
    answered: set[int] = set()

    def flaky(_record: Recorded) -> Reply:
        n = next(counter)
        if n < 4:  # down for the first four attempts
            return Reply("down", status=503, content_type="text/plain")
        answered.add(n)
        return Reply("", content_type="text/plain")

    cb = webhooks.route(f"/status/{dial}", flaky)
    url = webhooks.route(f"/voice/{dial}", rcml('<Pause length="1"/>', "<Hangup/>"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=url, StatusCallback=cb)
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=dial, workdir=workdir
    )
    assert result.ok, result.errors[-2000:]
    deadline = time.monotonic() + 20
    while len(answered) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    requests = webhooks.requests(f"/status/{dial}")
    ok = delivered(requests, answered)
    assert [r.params["CallStatus"] for r in ok] == ["ringing", "in-progress", "completed"]
    assert [r.params["SequenceNumber"] for r in ok] == ["0", "1", "2"]
    # order is kept while retrying: nothing is sent before its predecessor got its 2xx
    seqs = [int(r.params["SequenceNumber"]) for r in requests]
    assert seqs == sorted(seqs)
    time.sleep(1.0)
    assert len(webhooks.requests(f"/status/{dial}")) == len(requests)  # no duplicates after 2xx


def test_callbacks_survive_kill_9_and_restart(tmp_path, webhooks) -> None:
    port = free_port()
    callback_url = f"http://127.0.0.1:{port}/status"
    node = DaemonProcess(tmp_path / "node").start()
    try:
        url = webhooks.route("/voice/kill9", rcml('<Pause length="1"/>', "<Hangup/>"))
        node.create_number(
            PhoneNumber="66001", isSIP="true", VoiceUrl=url, StatusCallback=callback_url
        )
        result = run_sipp(  # three calls at once, each paused 1 s
            scenario("uac_daemon_hangs_up.xml", tmp_path),
            node.sip_port,
            service="66001",
            workdir=tmp_path,
            calls=3,
        )
        assert result.ok, result.errors[-2000:]
        assert node.wait_log("call.completed", count=3, timeout=10) is not None
        time.sleep(0.5)  # let the outbox commit (group commit runs within a loop turn)
        node.proc.kill()  # SIGKILL: no drain, no flush
        node.proc.wait(10)
        node.proc = None
        receiver = WebhookServer(port).start()
        try:
            receiver.route("/status", Reply("", content_type="text/plain"))
            node.start()
            events = receiver.wait_for("/status", 9, timeout=20)
            by_call: dict[str, list[str]] = {}
            for event in events:
                by_call.setdefault(event.params["CallSid"], []).append(event.params["CallStatus"])
            assert len(by_call) == 3
            for statuses in by_call.values():
                assert statuses == ["ringing", "in-progress", "completed"]
        finally:
            receiver.stop()
    finally:
        node.stop()


def test_call_cut_by_kill_9_gets_its_completed_callback_after_restart(tmp_path, webhooks) -> None:
    node = DaemonProcess(tmp_path / "node").start()
    sipp = None
    try:
        url = webhooks.route("/voice/cut", rcml('<Pause length="30"/>'))
        cb = webhooks.route("/status/cut", Reply("", content_type="text/plain"))
        node.create_number(PhoneNumber="66002", isSIP="true", VoiceUrl=url, StatusCallback=cb)
        sipp = start_call(scenario("uac_daemon_hangs_up.xml", tmp_path), node.sip_port,
                          service="66002", workdir=tmp_path)  # fmt: skip
        assert len(webhooks.wait_for("/status/cut", 2)) == 2  # ringing, in-progress
        time.sleep(0.5)  # the in-progress checkpoint is group-committed within 50 ms
        node.kill()
        sipp.kill()
        node.start()
        events = webhooks.wait_for("/status/cut", 3, timeout=15)
        assert [e.params["CallStatus"] for e in events] == ["ringing", "in-progress", "completed"]
        assert [e.params["SequenceNumber"] for e in events] == ["0", "1", "2"]
        assert len({e.params["CallSid"] for e in events}) == 1
        # the final event sent by the restart carries the call's own voice parameters
        assert (
            events[2].params["SipHeader_X-Test-Header"]
            == events[0].params["SipHeader_X-Test-Header"]
        )
        assert events[2].params["From"] == events[0].params["From"]
        with node.api() as api:
            record = api.get(f"/Calls/{events[0].params['CallSid']}.json")
        assert record.status_code == 200 and record.json()["status"] == "completed"
        assert node.logs("calls.interrupted")
        time.sleep(0.5)
        assert len(webhooks.requests("/status/cut")) == 3
    finally:
        if sipp is not None and sipp.poll() is None:
            sipp.kill()
        node.stop()
