"""Health: every node's version, snapshot version and lag, outbox depth and the live charts
(calls/s, messages/s, 503s shed, loop lag) drawn from each node's ``/metrics``.

This node's ``/health`` document and ``/metrics`` text come from the daemon in process; in a
cluster (PostgreSQL) the other nodes are the ``nodes`` heartbeat rows, read over HTTP at the
API address each one registered (``/health`` and ``/metrics``, one second at most). The page
pushes a sample every two seconds over server-sent events; the browser turns counters into
rates and draws them (``static/console.js``, inline SVG).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from rcmlrouter.api.context import store_of
from rcmlrouter.config import parse_host_port
from rcmlrouter.console.access import SESSIONS_KEY, page
from rcmlrouter.console.live import STOPPING_KEY, send_event
from rcmlrouter.console.sessions import COOKIE
from rcmlrouter.console.sources import sources_of
from rcmlrouter.console.templating import SECURITY_HEADERS, html
from rcmlrouter.store.records import NodeInfo

INTERVAL = 2.0
PROBE_TIMEOUT = 1.0
# chart name -> the samples summed for it (counters become rates in the browser)
SERIES = {
    "calls": ("rcmlrouter_calls_total",),
    "messages": ("rcmlrouter_messages_total",),
    "rejected": ("rcmlrouter_sip_overload_rejected_total",),
    "lag_sum": ("rcmlrouter_loop_lag_seconds_sum",),
    "lag_count": ("rcmlrouter_loop_lag_seconds_count",),
    "outbox": ("rcmlrouter_callbacks_pending",),
    "active": ("rcmlrouter_calls_active",),
}


def metric_sample(text: str) -> dict[str, float]:
    """The chart series of one ``/metrics`` text (Prometheus exposition format)."""
    totals: dict[str, float] = dict.fromkeys(SERIES, 0.0)
    wanted = {name: key for key, names in SERIES.items() for name in names}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = wanted.get(sample.name)
            if key is not None:
                totals[key] += float(sample.value)
    return totals


def node_url(api: str) -> str | None:
    """``http://HOST:PORT`` of a node's registered API address; None for a wildcard host."""
    parsed = parse_host_port(api)
    if parsed is None or parsed[0] in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        return None
    host = f"[{parsed[0]}]" if ":" in parsed[0] else parsed[0]
    return f"http://{host}:{parsed[1]}"


async def _probe(session: aiohttp.ClientSession, node: NodeInfo) -> dict[str, Any]:
    base = node_url(node.api)
    if base is None:
        return {"error": f"registered API address {node.api!r} cannot be reached from here"}
    try:
        async with session.get(f"{base}/health") as response:
            health = await response.json(content_type=None)
        async with session.get(f"{base}/metrics") as response:
            metrics = metric_sample(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {"error": f"unreachable: {exc!r}"}
    return {"health": health, "metrics": metrics}


async def node_states(request: web.Request) -> dict[str, dict[str, Any]]:
    """node id -> {health, metrics, heartbeat age} (or an error), this node first."""
    sources = sources_of(request)
    local = sources.health()
    local_id = str(local.get("node_id") or "this node")
    states: dict[str, dict[str, Any]] = {
        local_id: {"health": local, "metrics": metric_sample(sources.metrics().decode())}
    }
    others = [n for n in await store_of(request).list_nodes() if n.node_id != local_id]
    if others:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            probed = await asyncio.gather(*(_probe(session, node) for node in others))
        now = time.time()
        for node, state in zip(others, probed, strict=True):
            states[node.node_id] = {**state, "heartbeat_age": now - node.heartbeat_at}
    return states


@page
async def health_page(request: web.Request) -> web.StreamResponse:
    states = await node_states(request)
    return html(request, "health.html", nodes=states, stream="/console/health/stream")


@page
async def health_stream(request: web.Request) -> web.StreamResponse:
    """``text/event-stream``: a ``sample`` event (JSON: time and each node's series) every
    two seconds, until the browser leaves, the session ends or the daemon stops."""
    response = web.StreamResponse(headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    await response.prepare(request)
    stopping = request.app[STOPPING_KEY]
    sessions, key = request.app[SESSIONS_KEY], request.cookies.get(COOKIE)
    with contextlib.suppress(ConnectionError):
        while not stopping.is_set() and sessions.get(key) is not None:
            states = await node_states(request)
            sample = {
                "t": time.time(),
                "nodes": {node: state.get("metrics") for node, state in states.items()},
            }
            await send_event(response, "sample", json.dumps(sample))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), INTERVAL)
    return response
