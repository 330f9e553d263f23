"""Live call control between nodes: a command about a live call reaches the node that runs
the call, and its answer comes back (PostgreSQL LISTEN/NOTIFY; issue 18).

Every node LISTENs on a channel of its own (:func:`channel_for`: the schema and the node id,
hashed to fit PostgreSQL's 63-byte names) on one dedicated connection, as the change feed does.
``POST Calls/{CA}`` (an update) or ``POST Calls/{CA}/Streams[/{MZ}]`` (a stream started or
stopped) on node B for a call whose record names node A as its ``owner`` (or a change of a
conference whose room lives on A: ``Conferences/{CF}[/Participants/{CA}]``) becomes one
``pg_notify`` on A's channel; A applies the command to its live call and notifies B's channel
with the outcome; B's request resolves with it. A hang-up is answered once the call has ended
and its final record is durable, so B reads the ended call from the store.

The wire (JSON objects, one per NOTIFY payload, at most 8,000 bytes; :func:`encode_request`,
:func:`decode_request`, :func:`encode_reply`, :func:`decode_reply`):

- request, version 1 (an update): ``{"k": "q", "id", "re": B's channel, "sid", "u": the
  update's fields}``.
- request, version 2: ``{"k": "q", "v": 2, "id", "re", "sid", "c": kind, "p": fields}``, kind
  ``update`` | ``stream-start`` | ``stream-stop`` | ``conference-end`` | ``participant-update``
  | ``participant-kick`` (``call_updates.py``; ``sid`` is the ConferenceSid for the conference
  kinds, whose owner is the room's node). A payload over 2,000
  bytes goes deflated as ``"pz"`` (base64). An update still carries ``"u"`` (not ``"p"``), so
  a node of version 1 applies it; a version-1 node ignores other kinds (the requester answers
  ``unreachable`` after :data:`REPLY_WAIT`).
- reply: ``{"k": "r", "id", "o": outcome, "d": detail}``, plus (version 2) ``"r"``: the result
  (a stream's description, a conference's or participant's row) and ``"e"``: Twilio's error
  code of a refusal, when there is one.
  A request of a kind the node does not know is answered at once with outcome ``unknown``.

Before sending, B reads A's heartbeat (``nodes``): a node without one has stopped (its calls
ended with it: ``ended``, 21220); one silent for longer than the lease is dead or cut off
(``unreachable`` at once: the API answers 503 with Retry-After, and the survivor that claims its
calls closes them, ``cluster/work.py``). No answer within :data:`REPLY_WAIT` seconds (A died
just now) is ``unreachable`` too. A lost listener connection is reconnected with backoff;
requests sent meanwhile may go unanswered (``unreachable``), never wrongly answered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from rcmlrouter.call_updates import (
    ENDED,
    REFUSED,
    UNKNOWN,
    UNREACHABLE,
    UPDATE,
    CallCommand,
    CallUpdate,
    UpdateResult,
    command_from_wire,
)
from rcmlrouter.errors import RcmlRouterError
from rcmlrouter.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

REPLY_WAIT = 8.0  # s: above the owner's own wait for a hung-up call to close (5 s)
RECONNECT_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)
WIRE_VERSION = 2
DEFLATE_OVER = 2000  # bytes of a command's fields sent deflated
MAX_PAYLOAD = 7900  # bytes: PostgreSQL refuses a NOTIFY payload of 8,000 or more
ApplyLocally = Callable[[str, CallCommand], Awaitable[UpdateResult]]


class BadRequest(ValueError):
    """A request that cannot be applied; ``reply`` (id and channel) when it can be answered."""

    def __init__(self, why: str, reply: tuple[str, str] | None = None) -> None:
        super().__init__(why)
        self.reply = reply


def encode_request(
    request_id: str, reply_to: str, call_sid: str, command: CallCommand
) -> dict[str, Any]:
    """The request payload asking the owner of ``call_sid`` to apply ``command``."""
    head: dict[str, Any] = {"k": "q", "v": WIRE_VERSION, "id": request_id, "re": reply_to}
    head["sid"] = call_sid
    if isinstance(command, CallUpdate):
        return {**head, "c": UPDATE, "u": command.to_wire()}  # version 1 nodes read "u"
    fields = command.to_wire()
    text = _compact(fields)
    if len(text.encode()) > DEFLATE_OVER:
        packed = base64.b64encode(zlib.compress(text.encode(), 6)).decode()
        return {**head, "c": command.kind, "pz": packed}
    return {**head, "c": command.kind, "p": fields}


def decode_request(message: dict[str, Any]) -> tuple[str, str, str, CallCommand]:
    """Request id, reply channel, CallSid and command of a request payload (version 1 or 2);
    BadRequest (with ``reply`` when the sender can be told: an unknown kind)."""
    try:
        request_id, reply_to = str(message["id"]), str(message["re"])
        call_sid = str(message["sid"])
    except (KeyError, TypeError) as exc:
        raise BadRequest(f"no id, reply channel or CallSid: {exc!r}") from exc
    kind = str(message.get("c", UPDATE))
    try:
        if kind == UPDATE:
            fields = dict(message["u"])
        elif "pz" in message:
            fields = dict(json.loads(zlib.decompress(base64.b64decode(str(message["pz"])))))
        else:
            fields = dict(message["p"])
        command = command_from_wire(kind, fields)
    except LookupError as exc:
        if isinstance(exc, KeyError):  # a missing field, not an unknown kind
            raise BadRequest(f"{kind}: missing {exc}", (request_id, reply_to)) from exc
        raise BadRequest(str(exc), (request_id, reply_to)) from exc
    except (TypeError, ValueError, zlib.error) as exc:
        raise BadRequest(f"{kind}: {exc!r}", (request_id, reply_to)) from exc
    return request_id, reply_to, call_sid, command


def encode_reply(request_id: str, result: UpdateResult) -> dict[str, Any]:
    """The reply payload carrying ``result`` back to the requester."""
    reply: dict[str, Any] = {"k": "r", "id": request_id, "o": result.outcome, "d": result.detail}
    if result.result is not None:
        reply["r"] = result.result
    if result.code is not None:
        reply["e"] = result.code
    return reply


def decode_reply(message: dict[str, Any]) -> UpdateResult:
    """The result a reply payload carries (version 1 replies have neither result nor code)."""
    result, code = message.get("r"), message.get("e")
    return UpdateResult(
        str(message.get("o")),
        str(message.get("d", "")),
        None if result is None else {str(k): v for k, v in dict(result).items()},
        None if code is None else int(code),
    )


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def channel_for(schema: str, node_id: str) -> str:
    """The NOTIFY channel of ``node_id`` in ``schema`` (nodes of other schemas never meet)."""
    digest = hashlib.blake2s(f"{schema}\x00{node_id}".encode(), digest_size=12).hexdigest()
    return f"rcmlrouter_ctl_{digest}"


class CallCommands:
    """This node's command channel: sends updates to the nodes that run calls, and applies the
    updates other nodes send for the calls it runs."""

    def __init__(self, url: str, store: PostgresStore, node_id: str, lease: float = 10.0) -> None:
        self.url = url
        self.store = store
        self.node_id = node_id
        self.lease = lease
        self.sent = 0
        self.served = 0
        self.reconnects = 0
        self._apply: ApplyLocally | None = None
        self._conn: asyncpg.Connection | None = None
        self._schema = ""
        self._channel = ""
        self._pending: dict[str, asyncio.Future[UpdateResult]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnect: asyncio.Task[None] | None = None
        self._stopping = False

    async def open(self, apply: ApplyLocally) -> None:
        """LISTEN on this node's channel; apply what arrives with ``apply``."""
        self._apply = apply
        self._stopping = False
        await self._connect()

    async def request(self, owner: str, call_sid: str, command: CallCommand) -> UpdateResult:
        """Send ``command`` for ``call_sid`` to the node ``owner``; its answer."""
        silent = await self._silence(owner)
        if silent is None:
            return UpdateResult(ENDED, f"node {owner} has stopped")
        if silent > self.lease:
            return UpdateResult(UNREACHABLE, f"node {owner} is silent for {silent:.1f} s")
        request_id = secrets.token_hex(8)
        payload = encode_request(request_id, self._channel, call_sid, command)
        if len(_compact(payload).encode()) > MAX_PAYLOAD:
            too_large = "too large to send to the node that runs the call"
            return UpdateResult(REFUSED, too_large, code=20001)
        answer: asyncio.Future[UpdateResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            await self._notify(channel_for(self._schema, owner), payload)
            self.sent += 1
            async with asyncio.timeout(REPLY_WAIT):
                return await answer
        except TimeoutError:
            return UpdateResult(UNREACHABLE, f"node {owner} did not answer in {REPLY_WAIT:g} s")
        finally:
            self._pending.pop(request_id, None)

    async def stop(self) -> None:
        self._stopping = True
        for task in [*self._tasks, *([self._reconnect] if self._reconnect else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.wait_for(conn.close(), 2.0)

    def health(self) -> dict[str, Any]:
        listening = self._conn is not None and not self._conn.is_closed()
        counts = {"sent": self.sent, "served": self.served, "reconnects": self.reconnects}
        return {"call_commands": {**counts, "listening": listening}}

    async def _silence(self, node: str) -> float | None:
        """Seconds since ``node``'s last heartbeat; None when it has none (stopped, or
        forgotten as dead)."""
        row = await self.store.fetchone(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp()) - heartbeat_at FROM nodes "
            "WHERE node_id = ?",
            (node,),
        )
        return None if row is None else float(row[0])

    # ---- the wire ---------------------------------------------------------------------------

    async def _notify(self, channel: str, payload: dict[str, Any]) -> None:
        text = _compact(payload)

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT pg_notify($1, $2)", channel, text)

        await self.store.read(unit)  # autocommit: delivered at once

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            kind = message["k"]
        except (ValueError, KeyError, TypeError):
            log.warning("call_commands.bad_payload", payload=payload[:200])
            return
        if kind == "r":
            answer = self._pending.get(str(message.get("id")))
            if answer is not None and not answer.done():
                answer.set_result(decode_reply(message))
        elif kind == "q":
            task = asyncio.create_task(self._serve(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: dict[str, Any]) -> None:
        """Apply another node's command here and answer it."""
        assert self._apply is not None
        try:
            request_id, reply_to, call_sid, command = decode_request(message)
        except BadRequest as exc:
            log.warning("call_commands.bad_request", error=str(exc))
            if exc.reply is not None:
                await self._answer(exc.reply[1], exc.reply[0], UpdateResult(UNKNOWN, str(exc)))
            return
        try:
            result = await self._apply(call_sid, command)
        except RcmlRouterError as exc:  # e.g. the store is down: the record cannot move
            result = UpdateResult(UNREACHABLE, f"node {self.node_id}: {exc}")
        except Exception as exc:  # the listener must go on
            log.exception("call_commands.serve_failed")
            result = UpdateResult(UNREACHABLE, f"node {self.node_id}: internal error {exc!r}")
        self.served += 1
        await self._answer(reply_to, request_id, result)

    async def _answer(self, reply_to: str, request_id: str, result: UpdateResult) -> None:
        try:
            await self._notify(reply_to, encode_reply(request_id, result))
        except RcmlRouterError as exc:  # the store is unreachable: the requester times out
            log.warning("call_commands.reply_failed", error=str(exc))

    # ---- the listener connection ------------------------------------------------------------

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.url,
            timeout=5.0,
            command_timeout=5.0,
            server_settings={"application_name": f"rcmlrouter-ctl {self.node_id}"[:63]},
        )
        try:
            self._schema = str(await conn.fetchval("SELECT current_schema()"))
            self._channel = channel_for(self._schema, self.node_id)
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    def _on_terminated(self, conn: object) -> None:
        if self._stopping or conn is not self._conn:
            return
        log.warning("call_commands.listener_lost", node=self.node_id)
        self._conn = None
        self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while self._conn is None and not self._stopping:
            try:
                await self._connect()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning("call_commands.reconnect_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
        self.reconnects += 1
        log.info("call_commands.listening", channel=self._channel)
