"""The real daemon on PostgreSQL: ``init``, a number created through the API, SIPp calls routed,
status callbacks delivered, records written, and everything still there after a restart.

The daemon runs with ``RCMLROUTER_STORE_URL=postgresql://…/test?options=-csearch_path%3D<schema>``
in a schema of its own (created by the store at ``init``, dropped at the end).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.daemon import DaemonProcess
from support.pg import drop_schema, new_schema_name, psql_value, schema_url
from support.sipp import run_sipp, scenario
from support.webhooks import Reply, WebhookServer, rcml

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = new_schema_name()
    yield name
    drop_schema(name)


@pytest.fixture(scope="module")
def pg_daemon(tmp_path_factory: pytest.TempPathFactory, schema: str) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path_factory.mktemp("pg-daemon"), RCMLROUTER_STORE_URL=schema_url(schema)
    ).start()
    yield process
    process.stop()


def _wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_number_created_through_the_api_routes_a_sipp_call(
    pg_daemon: DaemonProcess, webhooks: WebhookServer, workdir, schema: str
) -> None:
    assert not pg_daemon.db.exists()  # the SQLite file is not used
    cb = webhooks.route("/pg/status", Reply("", content_type="text/plain"))
    url = webhooks.route("/pg/voice", rcml("<Hangup/>"))
    number = pg_daemon.create_number(
        PhoneNumber="88001", isSIP="true", VoiceUrl=url, StatusCallback=cb
    )
    assert (
        psql_value(
            schema, f"SELECT phone_number FROM incoming_phone_numbers WHERE sid = '{number['sid']}'"
        )
        == "88001"
    )
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir),
        pg_daemon.sip_port,
        service="88001",
        workdir=workdir,
    )
    assert result.ok, result.errors[-2000:]
    [voice] = webhooks.requests("/pg/voice")
    call_sid = voice.params["CallSid"]
    assert voice.params["AccountSid"] == pg_daemon.account_sid
    assert _wait_for(lambda: len(webhooks.requests("/pg/status")) >= 2)
    statuses = [r.params["CallStatus"] for r in webhooks.requests("/pg/status")]
    assert statuses[-1] == "completed"
    assert _wait_for(
        lambda: (
            psql_value(schema, f"SELECT status FROM calls WHERE sid = '{call_sid}'") == "completed"
        )
    )
    assert _wait_for(lambda: psql_value(schema, "SELECT COUNT(*) FROM callback_outbox") == "0")
    with pg_daemon.api() as client:
        response = client.get(f"/Calls/{call_sid}.json")
    assert response.status_code == 200 and response.json()["status"] == "completed"


def test_numbers_survive_a_restart_on_postgres(
    pg_daemon: DaemonProcess, webhooks: WebhookServer, workdir
) -> None:
    url = webhooks.route("/pg/restart", rcml("<Hangup/>"))
    pg_daemon.create_number(PhoneNumber="88002", isSIP="true", VoiceUrl=url)
    assert pg_daemon.stop() == 0
    pg_daemon.start()  # init again is a no-op: same admin, same token
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir),
        pg_daemon.sip_port,
        service="88002",
        workdir=workdir,
    )
    assert result.ok, result.errors[-2000:]
    assert len(webhooks.requests("/pg/restart")) == 1
