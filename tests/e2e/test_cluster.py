"""Two real daemons on one PostgreSQL schema: what one node's API writes, the other routes.

Node A and node B share a schema (``RCMLROUTER_STORE_URL`` = the same ``schema_url``); only A
runs ``init``. Each test writes through A and calls (SIPp) or asks B: a new number routes on B
within 1 s, a deleted one stops within 1 s, an application update reaches B's next call, a
killed listener connection loses nothing, a rotated or revoked token fails on B at once (not
after the 5 s authentication cache).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.daemon import API_PREFIX, DaemonProcess
from support.pg import drop_schema, new_schema_name, psql_value, schema_url, terminate_backends
from support.sipp import run_sipp, scenario
from support.webhooks import WebhookServer, rcml

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PROPAGATION_LIMIT = 1.0  # seconds, issue 8


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = new_schema_name()
    yield name
    drop_schema(name)


def cluster_env(schema: str, node_id: str) -> dict[str, str]:
    return {
        "RCMLROUTER_STORE_URL": schema_url(schema),
        "RCMLROUTER_CLUSTER_NODE_ID": node_id,
        "RCMLROUTER_CLUSTER_LEASE": "2",
        "RCMLROUTER_CLUSTER_VERSION_CHECK": "1",
    }


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, schema: str
) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    a = DaemonProcess(tmp_path_factory.mktemp("node-a"), **cluster_env(schema, "node-a"))
    b = DaemonProcess(tmp_path_factory.mktemp("node-b"), **cluster_env(schema, "node-b"))
    a.start()
    b.account_sid, b.auth_token = a.account_sid, a.auth_token  # one store: one admin
    b.start()
    yield a, b
    b.stop()
    a.stop()


def health(node: DaemonProcess) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{node.api_port}/health", timeout=5).json())


def store_version(schema: str) -> int:
    return int(psql_value(schema, "SELECT version FROM change_version"))


def wait_applied(node: DaemonProcess, version: int, limit: float = PROPAGATION_LIMIT) -> float:
    """Seconds until ``node``'s snapshot is at ``version``; fails after ``limit``."""
    started = time.monotonic()
    while (applied := health(node)["snapshot_version"]) < version:
        assert time.monotonic() - started < limit, f"at {applied}, not {version} after {limit}s"
        time.sleep(0.01)
    return time.monotonic() - started


def call(node: DaemonProcess, workdir, dialed: str, refused: str | None = None) -> None:  # type: ignore[no-untyped-def]
    name = "uac_daemon_hangs_up.xml"
    file = (
        scenario(name, workdir)
        if refused is None
        else scenario("uac_refused.xml.in", workdir, code=refused)
    )
    result = run_sipp(file, node.sip_port, service=dialed, workdir=workdir)
    assert result.ok, result.errors[-2000:]


def test_health_reports_the_snapshot_version_and_lag(
    nodes: tuple[DaemonProcess, DaemonProcess], schema: str
) -> None:
    _, b = nodes
    found = health(b)
    assert found["engine"] == "postgresql" and found["node_id"] == "node-b"
    assert found["listener"] == "connected"
    assert found["snapshot_version"] == store_version(schema)
    assert found["lag_versions"] == 0 and found["lag_seconds"] == 0


def test_a_number_created_on_a_routes_on_b_within_a_second(
    nodes: tuple[DaemonProcess, DaemonProcess], webhooks: WebhookServer, workdir, schema: str
) -> None:
    a, b = nodes
    url = webhooks.route("/cluster/new", rcml("<Hangup/>"))
    written = time.monotonic()
    a.create_number(PhoneNumber="61001", isSIP="true", VoiceUrl=url)
    wait_applied(b, store_version(schema))
    assert time.monotonic() - written < PROPAGATION_LIMIT
    call(b, workdir, "61001")
    [voice] = webhooks.requests("/cluster/new")
    assert voice.params["To"].endswith("61001")


def test_a_deleted_number_stops_routing_on_b_within_a_second(
    nodes: tuple[DaemonProcess, DaemonProcess], webhooks: WebhookServer, workdir, schema: str
) -> None:
    a, b = nodes
    url = webhooks.route("/cluster/deleted", rcml("<Hangup/>"))
    number = a.create_number(PhoneNumber="61002", isSIP="true", VoiceUrl=url)
    wait_applied(b, store_version(schema))
    call(b, workdir, "61002")
    with a.api() as client:
        assert client.delete(f"/IncomingPhoneNumbers/{number['sid']}.json").status_code == 204
    wait_applied(b, store_version(schema))
    call(b, workdir, "61002", refused="404")
    assert len(webhooks.requests("/cluster/deleted")) == 1


def test_an_application_update_reaches_bs_next_call(
    nodes: tuple[DaemonProcess, DaemonProcess], webhooks: WebhookServer, workdir, schema: str
) -> None:
    a, b = nodes
    first = webhooks.route("/cluster/app-1", rcml("<Hangup/>"))
    second = webhooks.route("/cluster/app-2", rcml("<Hangup/>"))
    with a.api() as client:
        created = client.post(
            "/Applications.json", data={"FriendlyName": "cluster", "VoiceUrl": first}
        )
        assert created.status_code in (200, 201), created.text
        app_sid = created.json()["sid"]
    a.create_number(PhoneNumber="61003", isSIP="true", VoiceApplicationSid=app_sid)
    wait_applied(b, store_version(schema))
    call(b, workdir, "61003")  # B caches the application now
    with a.api() as client:
        updated = client.post(f"/Applications/{app_sid}.json", data={"VoiceUrl": second})
        assert updated.status_code == 200, updated.text
    wait_applied(b, store_version(schema))
    call(b, workdir, "61003")
    assert len(webhooks.requests("/cluster/app-1")) == 1
    assert len(webhooks.requests("/cluster/app-2")) == 1


def test_a_killed_listener_connection_loses_no_change(
    nodes: tuple[DaemonProcess, DaemonProcess], webhooks: WebhookServer, workdir, schema: str
) -> None:
    import asyncio

    a, b = nodes
    url = webhooks.route("/cluster/relisten", rcml("<Hangup/>"))
    assert asyncio.run(terminate_backends("rcmlrouter-feed node-b")) == 1
    a.create_number(PhoneNumber="61004", isSIP="true", VoiceUrl=url)  # while B reconnects
    try:
        wait_applied(b, store_version(schema), limit=3.0)
    except AssertionError:
        print("\n".join(line for line in b.raw[-60:] if "feed" in line or "change" in line))
        raise
    call(b, workdir, "61004")
    assert b.wait_log("changefeed.listener_lost", 1) is not None
    assert health(b)["listener"] == "connected" and health(b)["reloads"] == 0


def test_a_rotated_or_revoked_token_fails_on_b_at_once(
    nodes: tuple[DaemonProcess, DaemonProcess], schema: str
) -> None:
    a, b = nodes
    with a.api() as client:
        created = client.post(
            f"http://127.0.0.1:{a.api_port}{API_PREFIX}/Accounts.json",
            data={"FriendlyName": "rotating", "EmailAddress": "rotate@example.com"},
        )
    assert created.status_code in (200, 201), created.text
    sub = created.json()
    sid, token = sub["sid"], sub["auth_token"]
    url = f"http://127.0.0.1:{b.api_port}{API_PREFIX}/Accounts/{sid}.json"
    assert httpx.get(url, auth=(sid, token)).status_code == 200  # B caches it for 5 s
    # rotate: any writer (the API, the CLI, SQL) goes through the change feed
    psql_value(schema, f"UPDATE accounts SET auth_token = '{'e' * 32}' WHERE sid = '{sid}'")
    started = time.monotonic()
    wait_applied(b, store_version(schema))
    assert httpx.get(url, auth=(sid, token)).status_code == 401
    assert httpx.get(url, auth=(sid, "e" * 32)).status_code == 200
    psql_value(schema, f"UPDATE accounts SET status = 'suspended' WHERE sid = '{sid}'")
    wait_applied(b, store_version(schema))
    assert httpx.get(url, auth=(sid, "e" * 32)).status_code == 401
    assert time.monotonic() - started < 2.0  # not the 5 s cache
