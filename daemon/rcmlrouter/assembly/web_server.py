"""The API port: the provisioning API, the console, and the operational routes (``/health``,
``/metrics``, ``/demos/…``), served by one aiohttp runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rcmlrouter import metrics
from rcmlrouter.api import create_api_app
from rcmlrouter.api.conferences import CONFERENCES_KEY
from rcmlrouter.api.context import ACCOUNTS_KEY, AccountCache, CallSettings, WorkQueue
from rcmlrouter.api.protocol_errors import ApiRunner
from rcmlrouter.call_updates import CallControl
from rcmlrouter.config import Config, parse_host_port
from rcmlrouter.console import ConsoleSources, mount_console
from rcmlrouter.errors import ConfigError
from rcmlrouter.services import Services
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import CallRecord, MessageRecord

HealthReport = Callable[[], dict[str, Any]]
DEMO_TYPES = {"xml": "text/xml", "wav": "audio/wav"}


@dataclass(slots=True)
class WebServer:
    """The API port's runner; :meth:`start` listens, :attr:`port` is the bound port."""

    runner: web.AppRunner
    port: int

    @property
    def accounts(self) -> AccountCache:
        """The API's account cache (cleared when another node changes an account)."""
        return self.runner.app[ACCOUNTS_KEY]

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_web_server(
    config: Config,
    store: Store,
    services: Services,
    health: HealthReport,
    message_queue: WorkQueue[MessageRecord] | None,
    call_queue: WorkQueue[CallRecord] | None = None,
    call_control: CallControl | None = None,
) -> WebServer:
    """Build the application, listen on ``api.listen``; a port that cannot be had is a
    ConfigError."""
    app = create_api_app(
        store,
        recycle_after=config.numbers.recycle_after,
        public_base_url=config.api_base_url,
        recordings_dir=Path(config.data.dir) / "recordings",
        auth_fail_limit=config.api.auth_fail_limit,
        auth_fail_window=config.api.auth_fail_window,
        token_grace=config.api.token_grace,
        on_account_change=services.directory.forget_account,
        message_queue=message_queue,
        sms_gateway=config.sms.gateway,
        calls=CallSettings(
            call_queue,
            can_dial_numbers=bool(config.trunks),
            caller_id=config.outbound.caller_id,
            default_region=config.routing.default_region,
        ),
        call_control=call_control,
    )
    if services.conferences is not None:
        app[CONFERENCES_KEY] = services.conferences
    add_operational_routes(app, health)
    console = console_sources(config, services, health) if config.console.enabled else None
    if console is not None:
        mount_console(app, console)
    runner = ApiRunner(app)
    await runner.setup()
    port = await _listen(runner, config.api.listen)
    return WebServer(runner, port)


async def _listen(runner: web.AppRunner, listen: str) -> int:
    host_port = parse_host_port(listen)
    assert host_port is not None
    site = web.TCPSite(runner, host_port[0], host_port[1], reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        raise ConfigError([f"api.listen: cannot listen on {listen}: {exc}"]) from exc
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else host_port[1]


def console_sources(config: Config, services: Services, health: HealthReport) -> ConsoleSources:
    """What the console borrows from the running daemon."""
    return ConsoleSources(
        snapshot=services.snapshot,
        directory=services.directory,
        attempts=services.outbox.attempts,
        health=health,
        metrics=lambda: generate_latest(metrics.REGISTRY),
        default_region=config.routing.default_region,
        session_timeout=config.console.session_timeout,
    )


def add_operational_routes(app: web.Application, health: HealthReport) -> None:
    """``/health`` (503 while draining), ``/metrics`` (Prometheus text), ``/demos/{name}``."""

    async def serve_health(_request: web.Request) -> web.Response:
        report = health()
        return web.json_response(report, status=503 if report["status"] == "draining" else 200)

    app.router.add_get("/demos/{name}", serve_demo)
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/health", serve_health)


async def serve_demo(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = DEMO_TYPES.get(name.rsplit(".", 1)[-1])
    if content_type is None or "/" in name or name.startswith("."):
        raise web.HTTPNotFound()
    demo = resources.files("rcmlrouter") / "demos" / name
    if not demo.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=demo.read_bytes(), content_type=content_type)


async def serve_metrics(_request: web.Request) -> web.Response:
    body = generate_latest(metrics.REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
