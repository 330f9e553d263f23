"""Test harness: the API with the console mounted, served on 127.0.0.1 over a real SQLite file,
the routing snapshot kept current from the store's changes (as the daemon does); a browser-like
httpx client (cookies, no automatic redirects)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from prometheus_client import generate_latest

from rcmlrouter import metrics
from rcmlrouter.api import create_api_app
from rcmlrouter.callback_attempts import CallbackAttempts
from rcmlrouter.console import ConsoleSources, mount_console
from rcmlrouter.directory import Directory
from rcmlrouter.routing.table import RouteEntry, RoutingSnapshot
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.inventory_csv import read_inventory_csv
from rcmlrouter.store.records import Account, CallRecord, NumberChange
from rcmlrouter.store.sqlite import SqliteStore

DEMO_CSV = Path(__file__).resolve().parents[2] / "config" / "inventory.demo.csv"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
API = "/restcomm/2012-04-24"


@dataclass
class Console:
    root: str
    app: web.Application
    store: SqliteStore
    admin: Account
    token: str
    snapshot: RoutingSnapshot
    sources: ConsoleSources
    db: Path

    def client(self) -> httpx.AsyncClient:
        """A fresh browser: its own cookie jar; redirects are not followed."""
        return httpx.AsyncClient(base_url=self.root, timeout=10, follow_redirects=False)

    async def api_post(self, path: str, auth: tuple[str, str], **data: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.root, timeout=10) as api:
            response = await api.post(f"{API}/{path}", data=data, auth=auth)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def sub_account(self, name: str, password: str | None = None) -> tuple[str, str]:
        data = {"FriendlyName": name}
        if password:
            data |= {"EmailAddress": f"{name}@example.com", "Password": password}
        created = await self.api_post("Accounts.json", (self.admin.sid, self.token), **data)
        return str(created["sid"]), str(created["auth_token"])

    async def call(self, account_sid: str, to: str, **changes: Any) -> CallRecord:
        now = time.time()
        record = CallRecord(
            new_sid("CA"), account_sid, None, "+15550001", to, "inbound", "completed",
            "exact", now, now, now + 5, 5.0, 200, ["http://hooks.example/voice"],
        )  # fmt: skip
        record = CallRecord(**{**{f: getattr(record, f) for f in record.__slots__}, **changes})
        await self.store.record_calls([record])
        return record


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, (path, page.status_code, page.text[:500])
    found = CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, user: str, secret: str) -> httpx.Response:
    token = await csrf_of(client, "/console/signin")
    return await client.post(
        "/console/signin",
        data={"csrf_token": token, "user": user, "secret": secret, "next": "/console/numbers"},
    )


def _follow_changes(snapshot: RoutingSnapshot, change: NumberChange) -> None:
    if change.number is None or change.action == "delete":
        snapshot.remove(change.sid)
        return
    n = change.number
    snapshot.load([RouteEntry(n.sid, n.organization_sid, n.phone_number, n.is_sip, n.date_created)])


async def start_console(
    tmp_path: Path, routes: Any = None, **options: Any
) -> AsyncIterator[Console]:
    """``routes(app)``: more routes added before the application is frozen."""
    store = await SqliteStore.open(tmp_path / "rcmlrouter.db")
    admin, token = await store.ensure_default_setup()
    assert token is not None
    await store.import_inventory(read_inventory_csv(DEMO_CSV))
    snapshot = RoutingSnapshot()
    store.add_change_listener(lambda change: _follow_changes(snapshot, change))
    directory = Directory(store)
    await directory.refresh_organizations()
    app = create_api_app(store, public_base_url="http://127.0.0.1:8080", **options)
    sources = ConsoleSources(
        snapshot=snapshot,
        directory=directory,
        attempts=CallbackAttempts(),
        health=lambda: {"status": "ok", "version": "test", "calls": 0, "node_id": None},
        metrics=lambda: generate_latest(metrics.REGISTRY),
    )
    mount_console(app, sources)
    if routes is not None:
        routes(app)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    root = f"http://127.0.0.1:{port}"
    yield Console(root, app, store, admin, token, snapshot, sources, tmp_path / "rcmlrouter.db")
    await runner.cleanup()
    await store.close()
