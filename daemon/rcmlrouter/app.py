"""Composition root: builds the components, owns start-up order, signals and the drain.

Start-up: store → routing snapshot (from the store, then kept current by change events) →
the HTTP client and fetcher → callback outbox and record writers → SIP endpoint → API. Shutdown
(SIGTERM/SIGINT) reverses it: stop taking calls (503), let calls finish within
``sip.drain_timeout``, flush records and queued callbacks, close the API and the store. The
parts come from :mod:`rcmlrouter.assembly`, one module per idea.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from rcmlrouter import __version__, metrics, systemd
from rcmlrouter.assembly.call_control import NodeCallControl
from rcmlrouter.assembly.media_setup import conference_registry, media_services, rtp_port_pool
from rcmlrouter.assembly.routing_load import apply_number_change, load_snapshot
from rcmlrouter.assembly.sip_setup import SipRequestRouter, build_endpoint, listen
from rcmlrouter.assembly.stores import open_store
from rcmlrouter.assembly.web_server import WebServer, start_web_server
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.calls.live_control import LocalCallControl
from rcmlrouter.calls.originate import OutboundCalls, is_queued_api_call
from rcmlrouter.calls.recovery import close_interrupted_calls
from rcmlrouter.calls.supervisor import CallSupervisor
from rcmlrouter.cluster.apply import SnapshotApplier
from rcmlrouter.cluster.node import ClusterNode
from rcmlrouter.cluster.work import Claim
from rcmlrouter.config import Config
from rcmlrouter.directory import Directory
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.journal import BatchWriter
from rcmlrouter.logconfig import lifecycle_logger
from rcmlrouter.messaging.inbound import MessageHandler
from rcmlrouter.messaging.outbound import SmsSender
from rcmlrouter.messaging.queued import QueuedMessages
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher
from rcmlrouter.retention import RecordsRetention
from rcmlrouter.routing.table import RoutingSnapshot
from rcmlrouter.services import Services
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.overload import LAG_BUCKETS
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import Notification, NumberChange
from rcmlrouter.store.stream_records import StreamRecord

log = structlog.get_logger(__name__)


class Daemon:
    """One running rcmlrouter process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Store | None = None
        self.cluster: ClusterNode | None = None
        self.services: Services | None = None
        self.endpoint: SipEndpoint | None = None
        self.supervisor: CallSupervisor | None = None
        self.messages: MessageHandler | None = None
        self.outgoing: QueuedMessages | None = None  # messages POST Messages queued
        self.originate: OutboundCalls | None = None  # calls POST Calls queued
        self.web: WebServer | None = None
        self.retention: RecordsRetention | None = None
        self._http: HttpClient | None = None
        self._sms: SmsSender | None = None  # <Sms>, <Message> and POST Messages: sends MESSAGEs

    @property
    def api_port(self) -> int | None:
        return self.web.port if self.web is not None else None

    async def start(self) -> None:
        config = self.config
        self.store = store = await open_store(config)
        admin_sid = await self._ensure_admin(store)
        self.cluster = cluster = ClusterNode.create(config, store)
        await cluster.open_feed()  # PostgreSQL: LISTEN before the snapshot is read
        snapshot = await load_snapshot(store)
        directory = Directory(store)
        await directory.refresh_organizations()

        def apply_number(change: NumberChange) -> None:
            apply_number_change(snapshot, directory, change)

        def local_change(change: NumberChange) -> None:
            apply_number(change)
            cluster.local_change()

        store.add_change_listener(local_change)
        # earlier runs' undelivered work goes first (a cluster node: its own and dead nodes')
        services, claim = await self._build_services(store, snapshot, directory, admin_sid)
        await _close_calls(services, claim, store)
        self.messages = MessageHandler(services)
        await self.messages.start(claim.messages)  # accepted, unprocessed: queued
        await self._start_sip(services)
        assert self.outgoing is not None
        self.outgoing.adopt(claim.outbound)  # queued / sending when an earlier run stopped
        self.outgoing.start()
        assert self.originate is not None
        self.originate.adopt(claim.calls)  # calls an earlier run left queued: dialled now
        assert self.supervisor is not None
        local_control = LocalCallControl(self.supervisor, services.conferences)
        await cluster.open_commands(local_control.command)  # other nodes' commands, our calls
        control = NodeCallControl(local_control, cluster.node_id, cluster.commands)
        self.web = web = await start_web_server(
            config, store, services, self.health_report, self.outgoing, self.originate, control
        )  # fmt: skip
        cluster.start(
            SnapshotApplier(store, snapshot, directory, apply_number, web.accounts.clear),
            self._take_over,
        )
        recordings = Path(config.data.dir) / "recordings"
        self.retention = RecordsRetention(store, config.records.max_age, recordings)
        self.retention.start()
        self._ready(len(snapshot))

    @staticmethod
    async def _ensure_admin(store: Store) -> str:
        admin, token = await store.ensure_default_setup()
        if token is not None:
            log.warning(
                "init.admin_created",
                account_sid=admin.sid,
                hint="run `rcmlrouter init` to print the credentials",
            )
        return admin.sid

    async def _build_services(
        self, store: Store, snapshot: RoutingSnapshot, directory: Directory, admin_sid: str
    ) -> tuple[Services, Claim]:
        """The HTTP client, fetcher, outbox and record writers; the earlier run's claim."""
        config = self.config
        assert self.cluster is not None
        hooks = config.webhooks
        if hooks.client:
            log.warning("config.obsolete_key", key="webhooks.client", value=hooks.client)
        # the one HTTP client of webhooks, callbacks and <Play> files, with the one deny list
        self._http = http = HttpClient(
            limit=hooks.pool_size, deny=DenyList(parse_networks(hooks.denied_networks))
        )
        timeouts = FetchTimeouts(hooks.connect_timeout, hooks.read_timeout, hooks.total_timeout)
        fetcher = RcmlFetcher(http, timeouts, user_agent=config.sip.user_agent)
        outbox = CallbackOutbox(store, fetcher, directory.auth_token, config.callbacks)
        notifications: BatchWriter[Notification] = BatchWriter(
            "notifications", store.add_notifications, linger=0.05
        )
        notifications.start()
        stream_records: BatchWriter[StreamRecord] = BatchWriter(
            "streams", store.save_streams, linger=0.05
        )
        stream_records.start()
        outbox.start()
        claim = await self.cluster.claim_at_start()
        outbox.adopt(claim.events)
        self._sms = sms = SmsSender(config, outbox, notifications)
        self.outgoing = QueuedMessages(sms, outbox)
        media = media_services(config, http, store)
        conferences = conference_registry(config, store, outbox, media)
        conferences.start()
        await conferences.recover()  # an earlier run's open conferences end (leave, end events)
        self.services = services = Services(
            config,
            snapshot,
            directory,
            fetcher,
            outbox,
            notifications,
            stream_records,
            rtp_port_pool(config),
            admin_sid,
            sms,
            media=media,
            conferences=conferences,
        )
        return services, claim

    async def _start_sip(self, services: Services) -> None:
        """The call supervisor and the endpoint, listening (SIP starts after recovery)."""
        config = self.config
        assert self.messages is not None
        self.supervisor = supervisor = CallSupervisor(services)
        self.endpoint = endpoint = build_endpoint(
            config, SipRequestRouter(supervisor, self.messages)
        )
        assert self._sms is not None
        self._sms.attach(endpoint)
        supervisor.attach(endpoint)
        self.originate = OutboundCalls(supervisor, config.outbound)
        metrics.SIP_SECURITY.source = lambda: {
            **endpoint.security_stats(),
            "rejected_overload": endpoint.stats.rejected_overload,
        }
        lag = endpoint.lag
        metrics.LOOP_LAG.source = lambda: (LAG_BUCKETS, lag.lag_counts, lag.lag_sum)
        await listen(endpoint, config)

    def _ready(self, numbers: int) -> None:
        assert self.endpoint is not None
        lifecycle_logger().info(
            "ready",
            sip=[f"{t}:{h}:{p}" for t, h, p in self.endpoint.addresses],
            api=f"http://{self.config.api.listen.rsplit(':', 1)[0]}:{self.api_port}",
            numbers=numbers,
        )
        systemd.notify("READY=1")

    async def _take_over(self, claim: Claim) -> None:
        """Finish a dead cluster node's work as a restart finishes its own."""
        assert self.services is not None and self.messages is not None and self.store is not None
        self.services.outbox.adopt(claim.events)
        if self.services.conferences is not None:  # its rooms are gone: leave and end events
            await self.services.conferences.close_nodes(claim.dead_nodes)
        await _close_calls(self.services, claim, self.store)
        if self.originate is not None:
            self.originate.adopt(claim.calls)
        self.messages.adopt(claim.messages)
        if self.outgoing is not None:
            self.outgoing.adopt(claim.outbound)

    def health_report(self) -> dict[str, Any]:
        """The ``/health`` document: status, version, calls, the cluster's versions and lag."""
        draining = self.supervisor is not None and self.supervisor.draining
        active = self.supervisor.active if self.supervisor else 0
        cluster = self.cluster.health() if self.cluster is not None else {}
        status = "draining" if draining else "ok"
        return {"status": status, "version": __version__, "calls": active, **cluster}

    async def stop(self) -> None:
        """Drain calls, flush what is queued, close everything.

        Every step runs even when an earlier one fails (a failure is logged), so the store is
        always closed and the process can exit.
        """
        systemd.notify("STOPPING=1")
        lifecycle = lifecycle_logger()
        lifecycle.info("stopping", drain_timeout=self.config.sip.drain_timeout)
        for name, step in self._shutdown_steps():
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - keep shutting down whatever failed
                log.error("shutdown.step_failed", step=name, error=repr(exc))
        lifecycle.info("stopped")

    def _shutdown_steps(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """In order: the drains (calls, messages), SIP, the writers, the API, the store."""
        grace = self.config.sip.drain_timeout
        endpoint, supervisor, services = self.endpoint, self.supervisor, self.services
        if endpoint is not None:
            endpoint.set_draining(True)
        messages, outgoing = self.messages, self.outgoing
        if supervisor is not None and self.originate is not None:
            supervisor.draining = True  # the API answers 429; queued calls stay queued
            self.originate.stop_waiting()
        conferences = services.conferences if services else None
        steps: list[tuple[str, Callable[[], Awaitable[None]] | None]] = [
            ("drain", (lambda: supervisor.drain(grace)) if supervisor else None),
            ("messages", (lambda: messages.drain(grace)) if messages else None),
            ("api messages", (lambda: outgoing.drain(grace)) if outgoing else None),
            ("sip", (lambda: _stop_endpoint(endpoint)) if endpoint else None),
            ("conferences", conferences.stop if conferences else None),
            ("notifications", services.notifications.stop if services else None),
            ("callbacks", services.outbox.stop if services else None),
            ("retention", self.retention.stop if self.retention else None),
            ("cluster", self.cluster.stop if self.cluster else None),
            ("api", self.web.close if self.web else None),
            ("webhook HTTP client", self._http.close if self._http else None),
            ("media streams", _streams_close(services)),
            ("stream records", services.stream_records.stop if services else None),
            ("store", self.store.close if self.store else None),
        ]
        return [(name, step) for name, step in steps if step is not None]


async def _close_calls(services: Services, claim: Claim, store: Store) -> None:
    """Close the calls a crash cut (an API call still queued never reached the network: it is
    dialled instead, ``OutboundCalls.adopt``), and their media streams with them."""
    cut = [call for call in claim.calls if not is_queued_api_call(call)]
    await close_interrupted_calls(services, cut, claim.last_seen)
    await store.end_streams([call.sid for call in cut])


def _streams_close(services: Services | None) -> Callable[[], Awaitable[None]] | None:
    media = services.media if services else None
    return media.streams.close if media is not None and media.streams is not None else None


async def _stop_endpoint(endpoint: SipEndpoint) -> None:
    await asyncio.sleep(0.2)  # let final BYE/ACK exchanges complete
    await endpoint.stop()


async def run_daemon(config: Config) -> None:
    """Run until SIGTERM/SIGINT; used by ``rcmlrouter run``."""
    # The store's worker thread must not keep the event loop off the GIL for the default 5 ms.
    sys.setswitchinterval(0.0005)
    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchdog = systemd.watchdog_interval()
    try:
        await daemon.start()
        # The routing snapshot (up to millions of objects) lives as long as the process: keep
        # the cycle collector from walking it, and collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(watchdog or 3600):
                    await stop.wait()
            if watchdog:
                systemd.notify("WATCHDOG=1")
    finally:
        await daemon.stop()
