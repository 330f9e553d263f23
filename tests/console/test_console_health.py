"""Health reads this node in process and the other nodes over HTTP at their registered API."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from console_harness import Console, sign_in

from rcmlrouter.console.health import metric_sample, node_url

METRICS = """# HELP rcmlrouter_calls_total Calls handled.
# TYPE rcmlrouter_calls_total counter
rcmlrouter_calls_total{match_kind="exact",outcome="completed"} 7.0
rcmlrouter_calls_total{match_kind="regex",outcome="completed"} 5.0
# TYPE rcmlrouter_loop_lag_seconds histogram
rcmlrouter_loop_lag_seconds_bucket{le="+Inf"} 4.0
rcmlrouter_loop_lag_seconds_count 4.0
rcmlrouter_loop_lag_seconds_sum 0.02
# TYPE rcmlrouter_callbacks_pending gauge
rcmlrouter_callbacks_pending 3.0
"""


def test_metric_samples_and_node_addresses() -> None:
    sample = metric_sample(METRICS)
    assert (sample["calls"], sample["lag_count"], sample["outbox"], sample["messages"]) == (
        12.0, 4.0, 3.0, 0.0,
    )  # fmt: skip
    assert node_url("10.0.0.5:8081") == "http://10.0.0.5:8081"
    assert node_url("[::1]:8081") == "http://[::1]:8081"
    assert node_url("0.0.0.0:8081") is None and node_url("nonsense") is None


@pytest.fixture
async def other_node() -> AsyncIterator[str]:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": "9.9.9", "node_id": "node-b:5072",
                                  "snapshot_version": 41, "store_version": 42,
                                  "lag_versions": 1, "lag_seconds": 0.5})  # fmt: skip

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=METRICS)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_the_health_page_shows_every_registered_node(
    console: Console, other_node: str
) -> None:
    now = time.time()
    with sqlite3.connect(console.db) as db:  # two heartbeat rows, as PostgreSQL nodes write them
        db.execute(
            "INSERT INTO nodes VALUES ('node-b:5072', ?, ?, 'b', '', ?)", (now, now, other_node)
        )
        db.execute(
            "INSERT INTO nodes VALUES ('node-c:5073', ?, ?, 'c', '', '0.0.0.0:8083')", (now, now)
        )
    async with console.client() as browser:
        await sign_in(browser, console.admin.sid, console.token)
        page = (await browser.get("/console/health")).text
    assert "<td>9.9.9</td>" in page and "1 versions, 0.5 s" in page and "<td>3</td>" in page
    assert "cannot be reached from here" in page  # node-c registered a wildcard address
