"""RCML fetch failures (SPEC §3.2): each kind goes to the fallback URL with ErrorCode/ErrorUrl."""

from __future__ import annotations

import pytest

from support.ports import free_port
from support.sipp import run_sipp, scenario
from support.webhooks import Reply, rcml

pytestmark = pytest.mark.e2e

FAILURES = {
    # kind: (primary reply or None for a closed port, URL fragment, expected ErrorCode)
    "refused": (None, "", "11205"),
    "timeout": (Reply("<Response/>", delay=1.5), "#tt=300", "11205"),
    "http-404": (Reply("nope", status=404, content_type="text/plain"), "", "11200"),
    "http-500": (Reply("boom", status=500, content_type="text/plain"), "", "11200"),
    "content-type": (
        Reply("<Response><Hangup/></Response>", content_type="text/html"),
        "",
        "12300",
    ),
    "bad-xml": (Reply("<Response><Hangup></Response>"), "", "12100"),
    "unknown-verb": (rcml("<Dance/>"), "", "12100"),
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_failure_goes_to_fallback(daemon, webhooks, workdir, dial, kind) -> None:
    reply, fragment, code = FAILURES[kind]
    if reply is None:
        primary = f"http://127.0.0.1:{free_port()}/voice"
    else:
        primary = webhooks.route(f"/primary/{dial}", reply) + fragment
    fallback = webhooks.route(f"/fallback/{dial}", rcml("<Hangup/>"))
    daemon.create_number(
        PhoneNumber=dial, isSIP="true", VoiceUrl=primary, VoiceFallbackUrl=fallback
    )
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=dial, workdir=workdir
    )
    assert result.ok, result.errors[-2000:]
    [request] = webhooks.requests(f"/fallback/{dial}")
    assert request.params["ErrorCode"] == code
    assert request.params["ErrorUrl"] == primary.partition("#")[0]
    assert request.params["CallStatus"] == "ringing"
    if reply is not None:
        [first] = webhooks.requests(f"/primary/{dial}")
        assert "#" not in first.url  # the override fragment is never sent


@pytest.mark.parametrize(("status", "sip"), [(404, "404"), (500, "500"), (503, "500")])
def test_no_fallback_refuses_the_call(daemon, webhooks, workdir, dial, status, sip) -> None:
    primary = webhooks.route(
        f"/primary/{dial}", Reply("x", status=status, content_type="text/plain")
    )
    cb = webhooks.route(f"/status/{dial}", Reply("", content_type="text/plain"))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=primary, StatusCallback=cb)
    result = run_sipp(
        scenario("uac_refused.xml.in", workdir, code=sip),
        daemon.sip_port,
        service=dial,
        workdir=workdir,
    )
    assert result.ok, result.errors[-2000:]
    events = webhooks.wait_for(f"/status/{dial}", 2)
    assert [e.params["CallStatus"] for e in events] == ["ringing", "failed"]
    assert events[1].params["SipResponseCode"] == sip


def test_failing_fallback_refuses_with_primary_status(daemon, webhooks, workdir, dial) -> None:
    primary = webhooks.route(f"/primary/{dial}", Reply("x", status=404, content_type="text/plain"))
    fallback = webhooks.route(f"/fallback/{dial}", Reply("<Oops/>"))
    daemon.create_number(
        PhoneNumber=dial, isSIP="true", VoiceUrl=primary, VoiceFallbackUrl=fallback
    )
    result = run_sipp(
        scenario("uac_refused.xml.in", workdir, code="404"),
        daemon.sip_port,
        service=dial,
        workdir=workdir,
    )
    assert result.ok, result.errors[-2000:]
    assert len(webhooks.requests(f"/fallback/{dial}")) == 1
    with daemon.api() as api:
        notes = api.get("/Notifications.json", params={"PageSize": 1000}).json()
    key = next(k for k in notes if isinstance(notes[k], list))
    codes = {n.get("error_code") for n in notes[key]}
    assert {11200, 12100} <= {int(c) for c in codes if c is not None}


def test_redirect_loop_is_bounded(daemon, webhooks, workdir, dial) -> None:
    loop = webhooks.url(f"/loop/{dial}")
    webhooks.route(f"/loop/{dial}", rcml(f'<Redirect method="POST">{loop}</Redirect>'))
    daemon.create_number(PhoneNumber=dial, isSIP="true", VoiceUrl=loop)
    result = run_sipp(
        scenario("uac_refused.xml.in", workdir, code="500"),
        daemon.sip_port,
        service=dial,
        workdir=workdir,
    )
    assert result.ok, result.errors[-2000:]
    assert len(webhooks.requests(f"/loop/{dial}")) == 21  # first fetch + 20 redirects
