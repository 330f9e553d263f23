"""A change to a conference that lives on another node goes to that node's API.

The conference's row names its owner; the owner's API address is in the ``nodes`` table
(PostgreSQL clusters). The request is sent there as it came (method, path and query, form body,
``Authorization``, ``Accept``) with ``X-Rcmlrouter-Forwarded`` (a forwarded request is never
forwarded again) and the owner's answer is relayed. An owner that is not registered or cannot be
reached answers 409 (20409) naming it: the conference cannot be changed from here.
"""

from __future__ import annotations

from typing import Final

import aiohttp
from aiohttp import web

from rcmlrouter.api.context import store_of
from rcmlrouter.config import parse_host_port
from rcmlrouter.errors import ApiError
from rcmlrouter.store.conference_records import ConferenceRecord

FORWARDED: Final = "X-Rcmlrouter-Forwarded"
TIMEOUT: Final = 10.0
_PASSED: Final = ("Authorization", "Accept", "Content-Type")


def not_here(record: ConferenceRecord, why: str = "") -> ApiError:
    return ApiError(
        409, 20409, f"conference {record.sid} lives on node {record.node_id}{why}: change it there"
    )


async def forward_to_owner(request: web.Request, record: ConferenceRecord) -> web.Response:
    """The owner's answer to ``request``; raises ApiError 409 when it cannot be asked."""
    if request.headers.get(FORWARDED):
        raise not_here(record)
    nodes = {node.node_id: node for node in await store_of(request).list_nodes()}
    node = nodes.get(record.node_id)
    parsed = parse_host_port(node.api) if node is not None else None
    if parsed is None or parsed[0] in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        raise not_here(record, " (not reachable from here)")
    host = f"[{parsed[0]}]" if ":" in parsed[0] else parsed[0]
    url = f"http://{host}:{parsed[1]}{request.rel_url}"
    headers = {name: request.headers[name] for name in _PASSED if name in request.headers}
    headers[FORWARDED] = "1"
    body = await request.read()
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(request.method, url, data=body, headers=headers) as answer,
        ):
            content = await answer.read()
            kind = answer.headers.get("Content-Type")
            return web.Response(status=answer.status, body=content, headers=_type(kind))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise not_here(record, f" (unreachable: {exc.__class__.__name__})") from exc


def _type(kind: str | None) -> dict[str, str]:
    return {"Content-Type": kind} if kind else {}
