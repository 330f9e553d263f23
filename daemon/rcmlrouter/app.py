"""Composition root: builds the components, owns start-up order, signals and the drain.

Start-up: store → routing snapshot (from the store, then kept current by change events) →
webhook session and fetcher → callback outbox and record writers → SIP endpoint → API. Shutdown
(SIGTERM/SIGINT) reverses it: stop taking calls (503), let calls finish within
``sip.drain_timeout``, flush records and queued callbacks, close the API and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rcmlrouter import __version__, metrics, systemd
from rcmlrouter.api import create_api_app
from rcmlrouter.api.context import ACCOUNTS_KEY
from rcmlrouter.api.protocol_errors import ApiRunner
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.calls.recovery import close_interrupted_calls
from rcmlrouter.calls.supervisor import CallSupervisor
from rcmlrouter.calls.transfer import refuse_out_of_dialog
from rcmlrouter.cluster.apply import SnapshotApplier
from rcmlrouter.cluster.node import ClusterNode, node_id_for
from rcmlrouter.cluster.work import Claim
from rcmlrouter.config import Config, SipConfig, parse_host_port, sqlite_path
from rcmlrouter.console import ConsoleSources, mount_console
from rcmlrouter.directory import Directory
from rcmlrouter.errors import ConfigError, SipError
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.journal import BatchWriter
from rcmlrouter.logconfig import lifecycle_logger
from rcmlrouter.media.cache import AudioCache
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.ports import RtpPortPool
from rcmlrouter.media.tts import SpeechSynthesizer
from rcmlrouter.messaging.inbound import MessageHandler
from rcmlrouter.messaging.outbound import SmsSender
from rcmlrouter.messaging.queued import QueuedMessages
from rcmlrouter.openfiles import raise_open_files_limit
from rcmlrouter.rcml.fetch import FetchTimeouts, RcmlFetcher
from rcmlrouter.retention import RecordsRetention
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot
from rcmlrouter.services import MediaServices, Services
from rcmlrouter.sip import tls
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.endpoint import SipEndpoint
from rcmlrouter.sip.guard import SourceGuard
from rcmlrouter.sip.overload import LAG_BUCKETS
from rcmlrouter.sip.transport import StreamLimits
from rcmlrouter.store.base import Notification, NumberChange, Store
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.sqlite import SqliteStore

log = structlog.get_logger(__name__)


async def open_store(config: Config) -> Store:
    """The store named by ``store.url`` (schema migrated on open)."""
    return await open_store_url(config.store.url, node_id=node_id_for(config))


async def open_store_url(url: str, *, node_id: str = "") -> Store:
    """``sqlite:///PATH`` or ``postgresql://…`` / ``postgres://…`` (schema migrated on open);
    ``node_id`` owns what this process writes on PostgreSQL (``cluster/work.py``)."""
    if url.startswith("sqlite:///"):
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return await SqliteStore.open(path)
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresStore.open(url, node_id=node_id)
    raise ConfigError([f"store.url: unsupported store {url.split(':', 1)[0]!r} in this build"])


async def load_snapshot(store: Store) -> RoutingSnapshot:
    started = time.perf_counter()
    snapshot = RoutingSnapshot()
    batch: list[RouteEntry] = []
    async for row in store.iter_route_rows():
        batch.append(RouteEntry(*row))
        if len(batch) >= 10_000:
            _load(snapshot, batch)
            batch = []
    _load(snapshot, batch)
    metrics.ROUTING_NUMBERS.set(len(snapshot))
    log.info(
        "routing.loaded", numbers=len(snapshot), seconds=round(time.perf_counter() - started, 3)
    )
    return snapshot


def _load(snapshot: RoutingSnapshot, entries: list[RouteEntry]) -> None:
    for entry, error in snapshot.load(entries):
        log.warning("routing.number_skipped", sid=entry.sid, error=str(error))


def sip_security(
    sip: SipConfig,
) -> tuple[SourceGuard, StreamLimits, ssl.SSLContext | None, ssl.SSLContext | None]:
    """[sip] trusted/flood/tls/tcp keys → the arguments of ``SipEndpoint.secure``; raises
    SipError when a TLS file cannot be used."""
    guard = SourceGuard(
        sip.trusted,
        untrusted=sip.untrusted,
        flood_limit=sip.flood_limit,
        flood_window=sip.flood_window,
    )
    limits = StreamLimits(
        sip.tcp_idle_timeout,
        sip.tcp_header_timeout,
        sip.tcp_max_connections,
        sip.tcp_max_per_source,
    )
    server = None
    if sip.tls_cert:
        server = tls.server_context(
            sip.tls_cert, sip.tls_key, ca=sip.tls_ca, verify_client=sip.tls_verify_client
        )
    return guard, limits, server, tls.client_context(sip.tls_ca) if sip.tls_ca else None


def rtp_port_pool(config: Config) -> RtpPortPool:
    """The RTP port pool; the open-file limit raised to fit it, with a warning when it cannot."""
    pool = RtpPortPool(*config.media.port_range)
    budget = raise_open_files_limit()
    fields = {
        "soft": budget.soft,
        "hard": budget.hard,
        "raised_from": budget.raised_from,
        "rtp_port_pairs": pool.size,
        "calls_with_media": min(pool.size, budget.calls_with_media()),
    }
    metrics.RTP_PORTS.source = lambda: (pool.size, pool.in_use, pool.busy, pool.busy_found)
    if budget.calls_with_media() < pool.size:
        hint = "raise LimitNOFILE (systemd) or ulimit -n; calls past it are answered 503"
        log.warning("media.open_files_limit", hint=hint, **fields)
    else:
        log.info("media.open_files_limit", **fields)
    return pool


class SipRequestRouter:
    """The SIP endpoint's handler: INVITEs to the call supervisor, MESSAGEs to the message
    handler, the rest refused for now."""

    def __init__(self, supervisor: CallSupervisor, messages: MessageHandler) -> None:
        self.supervisor = supervisor
        self.messages = messages

    def on_invite(self, call: IncomingCall) -> None:
        self.supervisor.on_invite(call)

    def on_request(self, request: IncomingRequest) -> None:
        if request.request.method == "MESSAGE":
            self.messages.on_message(request)
            return
        if request.request.method == "REFER":
            refuse_out_of_dialog(request)
            return
        request.respond(501, headers=[("Reason", 'SIP;cause=501;text="method not supported yet"')])


class Daemon:
    """One running rcmlrouter process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._closers: list[tuple[str, object]] = []
        self.endpoint: SipEndpoint | None = None
        self.supervisor: CallSupervisor | None = None
        self.messages: MessageHandler | None = None
        self.outgoing: QueuedMessages | None = None  # messages POST Messages queued
        self.services: Services | None = None
        self._runner: web.AppRunner | None = None
        self._http: HttpClient | None = None
        self.store: Store | None = None
        self.api_port: int | None = None
        self.cluster: ClusterNode | None = None
        self.retention: RecordsRetention | None = None

    async def start(self) -> None:
        config = self.config
        self.store = store = await open_store(config)
        admin, token = await store.ensure_default_setup()
        if token is not None:
            log.warning(
                "init.admin_created",
                account_sid=admin.sid,
                hint="run `rcmlrouter init` to print the credentials",
            )
        self.cluster = cluster = ClusterNode.create(config, store)
        await cluster.open_feed()  # PostgreSQL: LISTEN before the snapshot is read
        snapshot = await load_snapshot(store)
        directory = Directory(store)
        await directory.refresh_organizations()

        def apply_number(change: NumberChange) -> None:
            self._apply_change(snapshot, directory, change)

        def local_change(change: NumberChange) -> None:
            apply_number(change)
            cluster.local_change()

        store.add_change_listener(local_change)
        hooks = config.webhooks
        if hooks.client:
            log.warning("config.obsolete_key", key="webhooks.client", value=hooks.client)
        # the one HTTP client of webhooks, callbacks and <Play> files, with the one deny list
        self._http = HttpClient(
            limit=hooks.pool_size, deny=DenyList(parse_networks(hooks.denied_networks))
        )
        fetcher = RcmlFetcher(
            self._http,
            FetchTimeouts(hooks.connect_timeout, hooks.read_timeout, hooks.total_timeout),
            user_agent=config.sip.user_agent,
        )
        outbox = CallbackOutbox(store, fetcher, directory.auth_token, config.callbacks)
        notifications: BatchWriter[Notification] = BatchWriter(
            "notifications", store.add_notifications, linger=0.05
        )
        notifications.start()
        outbox.start()
        # earlier runs' undelivered events go first (a cluster node: its own and dead nodes')
        claim = await cluster.claim_at_start()
        outbox.adopt(claim.events)
        sms = SmsSender(config, outbox, notifications)
        self.outgoing = outgoing = QueuedMessages(sms, outbox)
        self.services = Services(
            config,
            snapshot,
            directory,
            fetcher,
            outbox,
            notifications,
            rtp_port_pool(config),
            admin.sid,
            sms,
            media=self._media_services(store),
        )
        await close_interrupted_calls(self.services, claim.calls, claim.last_seen)
        self.messages = MessageHandler(self.services)
        await self.messages.start(claim.messages)  # accepted, unprocessed: queued
        self.supervisor = CallSupervisor(self.services)
        self.endpoint = SipEndpoint(
            SipRequestRouter(self.supervisor, self.messages),
            user_agent=config.sip.user_agent,
            max_transactions=config.sip.max_transactions,
            advertise=config.sip.advertise or None,
            overload_lag=config.sip.overload_lag,
        )
        sms.attach(self.endpoint)
        self.services.endpoint = self.endpoint
        try:
            self.endpoint.secure(*sip_security(config.sip))
        except SipError as exc:
            raise ConfigError([f"sip.tls_cert / tls_key / tls_ca: {exc.reason}"]) from exc
        endpoint = self.endpoint
        metrics.SIP_SECURITY.source = lambda: {
            **endpoint.security_stats(),
            "rejected_overload": endpoint.stats.rejected_overload,
        }
        lag = self.endpoint.lag
        metrics.LOOP_LAG.source = lambda: (LAG_BUCKETS, lag.lag_counts, lag.lag_sum)
        try:
            await self.endpoint.start(list(config.sip.listen))
        except SipError as exc:
            raise ConfigError([f"sip.listen: {exc.reason}"]) from exc
        outgoing.adopt(claim.outbound)  # queued / sending when an earlier run stopped
        outgoing.start()
        await self._start_api(store)
        assert self._runner is not None
        accounts = self._runner.app[ACCOUNTS_KEY]
        cluster.start(
            SnapshotApplier(store, snapshot, directory, apply_number, accounts.clear),
            self._take_over,
        )
        recordings = Path(config.data.dir) / "recordings"
        self.retention = RecordsRetention(store, config.records.max_age, recordings)
        self.retention.start()
        lifecycle_logger().info(
            "ready",
            sip=[f"{t}:{h}:{p}" for t, h, p in self.endpoint.addresses],
            api=f"http://{config.api.listen.rsplit(':', 1)[0]}:{self.api_port}",
            numbers=len(snapshot),
        )
        systemd.notify("READY=1")

    async def _take_over(self, claim: Claim) -> None:
        """Finish a dead cluster node's work as a restart finishes its own."""
        assert self.services is not None and self.messages is not None
        self.services.outbox.adopt(claim.events)
        await close_interrupted_calls(self.services, claim.calls, claim.last_seen)
        self.messages.adopt(claim.messages)
        if self.outgoing is not None:
            self.outgoing.adopt(claim.outbound)

    def _media_services(self, store: Store) -> MediaServices:
        """The media clock, ``<Play>``'s audio cache and ``<Say>``'s speech under the data
        directory (``cache/audio``, ``cache/speech``), recordings in ``recordings/``."""
        data = Path(self.config.data.dir)
        assert self._http is not None
        return MediaServices(
            MediaClock(),
            AudioCache(data / "cache" / "audio", self._http),
            SpeechSynthesizer(data / "cache" / "speech"),
            data / "recordings",
            store.add_recording,
        )

    @staticmethod
    def _apply_change(
        snapshot: RoutingSnapshot, directory: Directory, change: NumberChange
    ) -> None:
        directory.on_number_change(change)
        number = change.number
        if change.action == "delete" or number is None:
            snapshot.remove(change.sid)
        else:
            entry = RouteEntry(
                number.sid,
                number.organization_sid,
                number.phone_number,
                number.is_sip,
                number.date_created,
            )
            snapshot.load([entry])
        metrics.ROUTING_NUMBERS.set(len(snapshot))

    async def _start_api(self, store: Store) -> None:
        config = self.config
        app = create_api_app(
            store,
            recycle_after=config.numbers.recycle_after,
            public_base_url=config.api_base_url,
            recordings_dir=Path(config.data.dir) / "recordings",
            auth_fail_limit=config.api.auth_fail_limit,
            auth_fail_window=config.api.auth_fail_window,
            token_grace=config.api.token_grace,
            on_account_change=self.services.directory.forget_account if self.services else None,
            message_queue=self.outgoing,
            sms_gateway=config.sms.gateway,
        )
        app.router.add_get("/demos/{name}", _serve_demo)
        app.router.add_get("/metrics", _serve_metrics)
        app.router.add_get("/health", self._serve_health)
        console = self._console_sources() if config.console.enabled else None
        if console is not None:
            mount_console(app, console)
        self._runner = ApiRunner(app)
        await self._runner.setup()
        host_port = parse_host_port(config.api.listen)
        assert host_port is not None
        site = web.TCPSite(self._runner, host_port[0], host_port[1], reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError([f"api.listen: cannot listen on {config.api.listen}: {exc}"]) from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.api_port = sockets[0].getsockname()[1] if sockets else host_port[1]
        if console is not None:  # the live-call controls reach the API through loopback
            host = host_port[0] if host_port[0] not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
            console.api_url = f"http://{f'[{host}]' if ':' in host else host}:{self.api_port}"

    def _console_sources(self) -> ConsoleSources | None:
        services = self.services
        if services is None:
            return None
        return ConsoleSources(
            snapshot=services.snapshot,
            directory=services.directory,
            attempts=services.outbox.attempts,
            health=self.health_report,
            metrics=lambda: generate_latest(metrics.REGISTRY),
            default_region=self.config.routing.default_region,
            session_timeout=self.config.console.session_timeout,
        )

    def health_report(self) -> dict[str, Any]:
        """The ``/health`` document: status, version, calls, the cluster's versions and lag."""
        draining = self.supervisor is not None and self.supervisor.draining
        active = self.supervisor.active if self.supervisor else 0
        cluster = self.cluster.health() if self.cluster is not None else {}
        status = "draining" if draining else "ok"
        return {"status": status, "version": __version__, "calls": active, **cluster}

    async def _serve_health(self, _request: web.Request) -> web.Response:
        report = self.health_report()
        return web.json_response(report, status=503 if report["status"] == "draining" else 200)

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
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        endpoint, supervisor, services = self.endpoint, self.supervisor, self.services
        if endpoint is not None:
            endpoint.set_draining(True)
        if supervisor is not None:
            steps.append(("drain", lambda: supervisor.drain(self.config.sip.drain_timeout)))
        if (messages := self.messages) is not None:
            steps.append(("messages", lambda: messages.drain(self.config.sip.drain_timeout)))
        if (outgoing := self.outgoing) is not None:
            steps.append(("api messages", lambda: outgoing.drain(self.config.sip.drain_timeout)))
        if endpoint is not None:
            steps.append(("sip", lambda: _stop_endpoint(endpoint)))
        if services is not None:
            steps.append(("notifications", services.notifications.stop))
            steps.append(("callbacks", services.outbox.stop))
        if self.retention is not None:
            steps.append(("retention", self.retention.stop))
        if self.cluster is not None:
            steps.append(("cluster", self.cluster.stop))
        if self._runner is not None:
            steps.append(("api", self._runner.cleanup))
        if self._http is not None:
            steps.append(("webhook HTTP client", self._http.close))
        if self.store is not None:
            steps.append(("store", self.store.close))
        return steps


async def _stop_endpoint(endpoint: SipEndpoint) -> None:
    await asyncio.sleep(0.2)  # let final BYE/ACK exchanges complete
    await endpoint.stop()


async def _serve_demo(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = _DEMO_TYPES.get(name.rsplit(".", 1)[-1])
    if content_type is None or "/" in name or name.startswith("."):
        raise web.HTTPNotFound()
    demo = resources.files("rcmlrouter") / "demos" / name
    if not demo.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=demo.read_bytes(), content_type=content_type)


_DEMO_TYPES = {"xml": "text/xml", "wav": "audio/wav"}


async def _serve_metrics(_request: web.Request) -> web.Response:
    body = generate_latest(metrics.REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


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
