"""The conferences of this node, by account and name, and the control the API uses.

:meth:`ConferenceRegistry.join` finds the room for a name or creates it: the store's
``claim_conference`` decides who holds a name (an active row per account and name, on one node
or many), so two calls for the same name never make two rooms. A name held by a room this node
does not have is either an earlier run's (the node died or was killed: that conference is over,
:meth:`ConferenceRegistry.recover` closes it at start with its ``leave`` and ``end`` events) or
another node's (joining it from here needs an internal SIP leg to that node: not in this
build, the ``<Dial>`` fails with a notification).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from rcmlrouter import metrics
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.conference.engine import MixEngine
from rcmlrouter.conference.events import (
    ConferenceEvents,
    Rows,
    StatusCallback,
    participant_record,
)
from rcmlrouter.conference.internal_leg import live_nodes
from rcmlrouter.conference.participant import Participant
from rcmlrouter.conference.recording import RecordingSpace, record_room
from rcmlrouter.conference.room import Room, RoomOptions
from rcmlrouter.errors import RcmlRouterError
from rcmlrouter.journal import BatchWriter
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.store.base import Store
from rcmlrouter.store.conference_records import ConferenceRecord, ParticipantRecord
from rcmlrouter.store.ids import new_sid

log = structlog.get_logger(__name__)
ENDED_KEPT = 10_000


class ConferenceElsewhereError(RcmlRouterError):
    """The conference lives on another node (``record.node_id``)."""

    def __init__(self, message: str, record: ConferenceRecord) -> None:
        super().__init__(message)
        self.record = record


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """Who joins which conference, and what a room it creates gets from them."""

    account_sid: str
    name: str
    callback: StatusCallback | None
    options: RoomOptions


class ConferenceRegistry:
    """Every live room of this node; implements :class:`~.control.ConferenceControl`."""

    def __init__(
        self,
        store: Store,
        outbox: CallbackOutbox,
        clock: MediaClock,
        node_id: str,
        recordings: RecordingSpace | None = None,
        lease: float = 10.0,
    ) -> None:
        self.store = store
        self.lease = lease
        self.outbox = outbox
        self.node_id = node_id
        self.recordings = recordings
        self.engine = MixEngine(clock)
        self.rows: BatchWriter[Rows] = BatchWriter("conference-rows", self._write, linger=0.02)
        self._by_name: dict[tuple[str, str], Room] = {}
        self._by_sid: dict[str, Room] = {}
        self._claims: dict[tuple[str, str], asyncio.Lock] = {}
        self._owners: dict[int, tuple[str, Callable[[], None]]] = {}  # remote joins' owners
        self._watch: asyncio.Task[None] | None = None
        self._ended: dict[str, None] = {}  # rooms this process ended lately (oldest first)
        metrics.CONFERENCES_ACTIVE.set_function(lambda: float(len(self._by_sid)))
        metrics.CONFERENCE_PARTICIPANTS.set_function(
            lambda: float(sum(len(room.participants) for room in self._by_sid.values()))
        )

    def start(self) -> None:
        self.rows.start()

    async def stop(self, grace: float = 5.0) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for room in list(self._by_sid.values()):
            room.end("conference-ended-by-shutdown")
        await self.rows.stop(grace)

    async def _write(self, batch: Sequence[Rows]) -> None:
        conferences = [c for rows in batch for c in rows[0]]
        participants = [p for rows in batch for p in rows[1]]
        await self.store.save_conference_rows(conferences, participants)

    def __len__(self) -> int:
        return len(self._by_sid)

    def room(self, sid: str) -> Room | None:
        return self._by_sid.get(sid)

    # -- joining --------------------------------------------------------------------------------

    async def join(self, request: JoinRequest, participant: Participant) -> Room:
        """Put ``participant`` in the room for the name (created if needed). Raises
        ConferenceFullError, ConferenceElsewhereError, StoreError."""
        key = (request.account_sid, request.name)
        room = self._by_name.get(key)
        if room is None:
            lock = self._claims.setdefault(key, asyncio.Lock())
            async with lock:
                room = self._by_name.get(key) or await self._create(request)
            if not lock.locked():
                self._claims.pop(key, None)
        room.join(participant)
        return room

    async def _create(self, request: JoinRequest) -> Room:
        now = time.time()
        callback = request.callback
        record = ConferenceRecord(
            new_sid("CF"), request.account_sid, request.name, "init", self.node_id, now, now,
            status_callback=callback.url if callback else None,
            status_callback_method=callback.method if callback else "POST",
            status_callback_event=" ".join(callback.events) if callback else "",
        )  # fmt: skip
        held = await self.store.claim_conference(record)
        if held.sid != record.sid:
            if held.node_id != self.node_id:
                raise ConferenceElsewhereError(
                    f"conference {request.name} lives on node {held.node_id}", held
                )
            if held.sid in self._ended:  # ours, just ended: its last row is on its way
                await self.rows.flush()
            else:
                await self._close_stale(held)  # an earlier run's: over
            held = await self.store.claim_conference(record)
            if held.sid != record.sid:
                raise ConferenceElsewhereError(f"conference {request.name} is held", held)
        events = ConferenceEvents(record, self.outbox, self.rows, callback)
        room = Room(events, self.engine, request.options, self._forget)
        space = self.recordings
        if request.options.record and space is not None:
            room.record = lambda: record_room(space, events)
        self._by_name[(request.account_sid, request.name)] = room
        self._by_sid[record.sid] = room
        log.info("conference.created", conference_sid=record.sid, friendly_name=request.name)
        return room

    def _forget(self, room: Room) -> None:
        record = room.events.record
        self._by_sid.pop(record.sid, None)
        self._ended[record.sid] = None
        if len(self._ended) > ENDED_KEPT:
            del self._ended[next(iter(self._ended))]
        if self._by_name.get((record.account_sid, record.friendly_name)) is room:
            del self._by_name[(record.account_sid, record.friendly_name)]
        log.info("conference.ended", conference_sid=record.sid, reason=record.reason_ended)

    # -- other nodes ----------------------------------------------------------------------------

    async def owner_address(self, node_id: str) -> tuple[str, int] | None:
        """The SIP (UDP) address of ``node_id`` while it is alive; None when it is dead."""
        return (await live_nodes(self.store, self.lease)).get(node_id)

    async def is_node_host(self, host: str) -> bool:
        """Whether ``host`` is the SIP host of a live node (an internal leg's source)."""
        return any(h == host for h, _ in (await live_nodes(self.store, self.lease)).values())

    def watch_owner(self, node_id: str, on_dead: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_dead`` once if ``node_id`` (the owner of a room a local caller joined
        through an internal leg) stops heartbeating; returns the function that stops watching."""
        key = id(on_dead)
        self._owners[key] = (node_id, on_dead)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(self._watch_owners())
        return lambda: self._owners.pop(key, None) and None

    async def _watch_owners(self) -> None:
        while self._owners:
            await asyncio.sleep(max(0.2, self.lease / 4))
            try:
                alive = await live_nodes(self.store, self.lease)
            except RcmlRouterError as exc:
                log.warning("conference.owner_check_failed", error=str(exc))
                continue
            for key, (node_id, on_dead) in list(self._owners.items()):
                if node_id not in alive:
                    self._owners.pop(key, None)
                    log.warning("conference.owner_dead", node_id=node_id)
                    on_dead()

    async def close_nodes(self, node_ids: Sequence[str]) -> None:
        """A dead node's conferences are over (the survivor that claimed its work closes them):
        ``leave`` for everyone still connected, then ``end``."""
        for node_id in node_ids:
            for record in await self.store.active_conferences(node_id):
                await self._close_stale(record)

    # -- an earlier run's conferences -----------------------------------------------------------

    async def recover(self) -> int:
        """Close the conferences an earlier run of this node left open (it died with them):
        each participant still connected gets its ``leave`` event, then the ``end``."""
        stale = await self.store.active_conferences(self.node_id)
        for record in stale:
            if record.sid not in self._by_sid:
                await self._close_stale(record)
        if stale:
            log.info("conference.recovered", conferences=len(stale))
        return len(stale)

    async def _close_stale(self, record: ConferenceRecord) -> None:
        callback = None
        if record.status_callback:
            events = tuple(record.status_callback_event.split())
            callback = StatusCallback(record.status_callback, record.status_callback_method, events)
        events_out = ConferenceEvents(record, self.outbox, self.rows, callback)
        page = await self.store.list_participants(record.sid, "connected", 0, 1000)
        for row in page.items:
            left = replace(row, status="completed", date_updated=time.time())
            self.rows.add(((), [left]))
            events_out.emit("leave", "participant-leave", left)
        events_out.update(status="completed", reason_ended="conference-ended-by-node-failure")
        reason = "conference-ended-by-node-failure"
        events_out.emit("end", "conference-end", ReasonConferenceEnded=reason)
        await self.rows.flush()

    # -- control (the API) ----------------------------------------------------------------------

    def end(self, conference_sid: str) -> ConferenceRecord | None:
        room = self._by_sid.get(conference_sid)
        if room is None:
            return None
        room.end("conference-ended-via-api")
        return room.events.record

    def update_participant(
        self,
        conference_sid: str,
        call_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
        hold_url: str | None = None,
        hold_method: str = "GET",
    ) -> ParticipantRecord | None:
        room = self._by_sid.get(conference_sid)
        if room is None or call_sid not in room.participants:
            return None
        participant = room.participants[call_sid]
        if muted is not None:
            room.mute(call_sid, muted)
        if hold is not None or hold_url is not None:
            room.hold(call_sid, participant.hold if hold is None else hold, hold_url, hold_method)
        return participant_record(room.events.record, participant)

    def kick(self, conference_sid: str, call_sid: str) -> bool:
        room = self._by_sid.get(conference_sid)
        if room is None or call_sid not in room.participants:
            return False
        room.leave(call_sid, "kicked")
        return True
