"""A store outage during calls: SIP answers 503 + Retry-After promptly (never a hang), and calls
route again once the database is back, without a restart. The daemon reaches PostgreSQL through
a loopback TCP proxy that the test cuts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from support.daemon import DaemonProcess
from support.pg import SERVER_URL, drop_schema, new_schema_name, schema_url
from support.sipp import run_sipp, scenario
from support.tcpproxy import TcpProxy
from support.webhooks import WebhookServer, rcml

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


class ThreadedProxy:
    """TcpProxy on an event loop of its own thread (the e2e tests are synchronous)."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = TcpProxy(host, port)
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.run(self.proxy.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def proxy() -> Iterator[ThreadedProxy]:
    threaded = ThreadedProxy("127.0.0.1", 5432)
    threaded.run(threaded.proxy.start())
    yield threaded
    threaded.close()


def test_calls_get_503_while_the_store_is_unreachable_then_route_again(
    tmp_path, proxy: ThreadedProxy, webhooks: WebhookServer
) -> None:
    schema = new_schema_name()
    url = schema_url(schema).replace("127.0.0.1:5432", f"127.0.0.1:{proxy.proxy.port}")
    assert SERVER_URL.endswith("127.0.0.1:5432/test") and url != schema_url(schema)
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_STORE_URL=url).start()
    try:
        voice = webhooks.route("/voice/outage", rcml("<Hangup/>"))
        node.create_number(PhoneNumber="88100", isSIP="true", VoiceUrl=voice)
        answered = scenario("uac_daemon_hangs_up.xml", tmp_path)
        refused = scenario("uac_refused.xml.in", tmp_path, code="503")
        first = run_sipp(answered, node.sip_port, service="88100", workdir=tmp_path)
        assert first.ok, first.errors[-2000:]

        proxy.run(proxy.proxy.stop())  # the database is gone
        started = time.monotonic()
        cut = run_sipp(refused, node.sip_port, service="88100", workdir=tmp_path, timeout=20)
        assert cut.ok, cut.errors[-2000:]  # 503, not a hang
        assert time.monotonic() - started < 15
        line = node.wait_log("call.completed", count=2, timeout=5)
        assert line is not None and line["sip_status"] == 503
        assert node.proc is not None and node.proc.poll() is None  # still running

        proxy.run(proxy.proxy.start())  # back, on the same port
        deadline = time.monotonic() + 30
        while True:
            again = run_sipp(answered, node.sip_port, service="88100", workdir=tmp_path)
            if again.ok or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert again.ok, "calls did not route again after the store came back"
    finally:
        node.stop()
        drop_schema(schema)
