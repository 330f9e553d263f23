"""A cheap webhook server for the SIP benchmark, in its own process.

Run: .venv/bin/python tests/bench/bench_webhook.py --port PORT

``POST|GET /voice/<name>`` returns a fixed RCML document (``reject``, ``hangup``, ``pause``,
``busy``); ``/status`` answers 204 to status callbacks; ``GET /stats`` returns the request counts
per path as JSON, so the benchmark can check that every call produced its callbacks. No access
log, no signature checks: the point is to cost as little CPU as possible next to the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json

import uvloop
from aiohttp import web

DOCUMENTS = {
    "reject": b'<?xml version="1.0" encoding="UTF-8"?><Response><Reject/></Response>',
    "busy": b'<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>',
    "hangup": b'<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>',
    "pause": b'<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="60"/></Response>',
    "empty": b'<?xml version="1.0" encoding="UTF-8"?><Response/>',  # message_bench.py SmsUrl
}

COUNTS: collections.Counter[str] = collections.Counter()


async def voice(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    COUNTS[f"voice/{name}"] += 1
    body = DOCUMENTS.get(name)
    if body is None:
        return web.Response(status=404)
    await request.read()
    return web.Response(body=body, content_type="text/xml")


async def status(request: web.Request) -> web.Response:
    await request.read()
    COUNTS["status"] += 1
    return web.Response(status=204)


async def stats(_request: web.Request) -> web.Response:
    return web.Response(text=json.dumps(dict(COUNTS)), content_type="application/json")


async def reset(_request: web.Request) -> web.Response:
    COUNTS.clear()
    return web.Response(status=204)


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/voice/{name}", voice)
    app.router.add_route("*", "/status", status)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        build_app(),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=lambda *_: None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
