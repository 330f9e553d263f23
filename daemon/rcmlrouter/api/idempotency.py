"""The ``Idempotency-Key`` request header: a retried create answers what the first one did and
creates nothing new (issue 18; Stripe's semantics).

One mechanism for every create that starts work (``POST Messages``, ``POST Calls``). A create
that hands its resource to a ``WorkQueue`` calls :func:`create_queued` with the key, the queue and
two steps of its own (``api/messages.py`` is the example)::

    key = IdempotencyKey.of(request, account.sid, params)   # None without the header
    return await create_queued(
        key, store, settings.messages, "messages",
        build,                   # validate; the resource and its answer (not sent yet)
        store.create_message,    # write the resource and claim the key in one transaction
    )

It answers the first answer when the key has one (or 422), 429 (:class:`QueueFull`) while the
queue is full, else builds, writes with :func:`create_once` and hands the resource to the
queue when this request created it; the answer is ours, or a concurrent twin's.

The store method (``create_xxx(resource, record | None, ttl) -> IdempotencyRecord | None``)
writes the resource and claims the key **in one transaction**, with
``store/queries_idempotency.claim_idempotency_key`` as its first step: None when it wrote,
else the record that holds the key (and it wrote nothing). So the key and what it created
commit together or not at all, on any node of a cluster; of concurrent duplicates exactly one
creates. The decisions:

- scope: the account of the URL and the key; a key lives ``IDEMPOTENCY_TTL`` (24 h) from the
  first request, then may be used again; expired records are pruned every
  ``PRUNE_EVERY`` s by each node (one indexed ``DELETE``);
- what is kept: the first **successful** answer (status, content type, body), replayed byte
  for byte with ``Idempotent-Replayed: true``; a request refused before anything was created
  (400, 401, 403, 404, 429, 503) stores nothing, so fixing it and retrying with the key works;
- same key, different request (another path or base, another format, other parameters):
  ``422`` with code ``20422``; a malformed header (empty, over 255 characters, not printable
  ASCII): ``400`` / ``20001``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog
from aiohttp import web

from rcmlrouter.api.context import WorkQueue
from rcmlrouter.api.form import Params
from rcmlrouter.api.render import wants_json
from rcmlrouter.errors import ApiError, RcmlRouterError
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import IdempotencyRecord

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
IDEMPOTENCY_TTL = 86400.0  # s a key answers with its first result
PRUNE_EVERY = 600.0  # s between prunes of expired keys
MAX_KEY = 255
MISMATCH_CODE = 20422


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """The ``Idempotency-Key`` of one create request and the fingerprint of that request."""

    account_sid: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, request: web.Request, account_sid: str, params: Params) -> IdempotencyKey | None:
        """The request's key (None without the header); 400 when the header is malformed."""
        value = request.headers.get(HEADER)
        if value is None:
            return None
        if not 0 < len(value) <= MAX_KEY or not all(" " <= ch <= "~" for ch in value):
            raise ApiError(
                400,
                20001,
                f"{HEADER}: must be 1 to {MAX_KEY} printable ASCII characters",
            )
        return cls(account_sid, value, fingerprint(request, params))

    async def replay(self, store: Store) -> web.Response | None:
        """The first answer given under this key (None: no live record; the request goes on);
        422 when the key answered a different request."""
        since = time.time() - IDEMPOTENCY_TTL
        held = await store.get_idempotency_record(self.account_sid, self.key, since)
        return None if held is None else self.answer(held)

    def record(self, response: web.Response, resource_sid: str | None) -> IdempotencyRecord:
        """What to store with the created resource: ``response``, about to be sent."""
        return IdempotencyRecord(
            self.account_sid,
            self.key,
            self.fingerprint,
            response.status,
            response.content_type,
            response.text or "",
            resource_sid,
            time.time(),
        )

    def answer(self, held: IdempotencyRecord) -> web.Response:
        """The stored first answer, or 422 when it answered another request."""
        if held.fingerprint != self.fingerprint:
            raise ApiError(
                422,
                MISMATCH_CODE,
                f"{HEADER} {self.key!r} was already used with a different request "
                f"(another path, format or parameters) within the last 24 hours",
            )
        response = web.Response(status=held.status, text=held.body, content_type=held.content_type)
        response.headers[REPLAYED] = "true"
        return response


Write = Callable[[IdempotencyRecord | None], Awaitable[IdempotencyRecord | None]]


async def create_once(
    key: IdempotencyKey | None, response: web.Response, resource_sid: str, write: Write
) -> tuple[web.Response, bool]:
    """Write the resource (``write`` gets the key's record, or None without a key) and answer:
    ``(response, True)`` when this request created it, ``(the first answer, False)`` when a
    concurrent request with the same key did (or 422 if that was a different request)."""
    held = await write(key.record(response, resource_sid) if key is not None else None)
    if held is None:
        return response, True
    assert key is not None, "a store create without a key never returns a record"
    return key.answer(held), False


class Queued(Protocol):
    """A resource a create hands to a ``WorkQueue`` (a call, a message)."""

    @property
    def sid(self) -> str: ...


R = TypeVar("R", bound=Queued)
WriteResource = Callable[[R, IdempotencyRecord | None, float], Awaitable[IdempotencyRecord | None]]


async def create_queued(
    key: IdempotencyKey | None,
    store: Store,
    queue: WorkQueue[R] | None,
    kind: str,
    build: Callable[[], Awaitable[tuple[R, web.Response]]],
    write: WriteResource[R],
) -> web.Response:
    """A create that starts work: the first answer when ``key`` has one; 429 while ``queue``
    is full (``kind``: what waits in it); else ``build`` (validate: the resource and its answer,
    not sent yet), ``write`` it with the key's record (:func:`create_once`) and, when this
    request created it, hand it to ``queue``. The answer: ours, or a concurrent twin's."""
    if key is not None and (first := await key.replay(store)) is not None:
        return first
    if queue is not None and queue.full():
        raise QueueFull(kind)
    resource, response = await build()
    answer, created = await create_once(
        key, response, resource.sid, lambda held: write(resource, held, IDEMPOTENCY_TTL)
    )
    if created and queue is not None:
        queue.submit(resource)
    return answer


class QueueFull(ApiError):
    """429 (20429, ``Retry-After``): too many ``kind`` (calls, messages) wait in this process."""

    retry_after = 1

    def __init__(self, kind: str) -> None:
        super().__init__(429, 20429, f"Too many {kind} queued; retry in 1 s")


def fingerprint(request: web.Request, params: Params) -> str:
    """sha256 of what makes two requests the same: method, path, response format and every
    parameter value (all values of a repeated one, e.g. ``StatusCallbackEvent``)."""
    text = json.dumps([request.method, request.path, wants_json(request), params.every()])
    return hashlib.sha256(text.encode()).hexdigest()


async def prune_expired(store: Store, now: float | None = None) -> int:
    """Delete the records older than the TTL; how many."""
    before = (time.time() if now is None else now) - IDEMPOTENCY_TTL
    return await store.prune_idempotency_records(before)


async def _prune_forever(store: Store, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            pruned = await prune_expired(store)
        except RcmlRouterError as exc:
            log.warning("idempotency.prune_failed", error=str(exc))
            continue
        if pruned:
            log.info("idempotency.pruned", records=pruned)


def prune_context(
    store: Store, every: float = PRUNE_EVERY
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` entry: prune expired keys every ``every`` s while the API
    runs (each node of a cluster does; the ``DELETE`` is idempotent and indexed)."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_prune_forever(store, every), name="idempotency-prune")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
