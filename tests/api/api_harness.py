"""Test harness: a real API server on 127.0.0.1 over a real SQLite file, driven with httpx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from rcmlrouter.api import create_api_app
from rcmlrouter.api.protocol_errors import ApiRunner
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.inventory_csv import read_inventory_csv
from rcmlrouter.store.records import Account, IncomingNumber
from rcmlrouter.store.sqlite import SqliteStore

DEMO_CSV = Path(__file__).resolve().parents[2] / "config" / "inventory.demo.csv"
PUBLIC_BASE = "http://127.0.0.1:8080"


@dataclass
class Api:
    client: httpx.AsyncClient
    root: str
    store: SqliteStore
    admin: Account
    token: str

    def url(self, path: str, account: str | None = None) -> str:
        return f"{self.root}/restcomm/2012-04-24/Accounts/{account or self.admin.sid}/{path}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.admin.sid, self.token)

    async def create(
        self, path: str = "IncomingPhoneNumbers.json", **params: str
    ) -> httpx.Response:
        return await self.client.post(self.url(path), data=params, auth=self.auth)

    async def count(self, account: str | None = None) -> int:
        resp = await self.client.get(self.url("IncomingPhoneNumbers.json", account), auth=self.auth)
        assert resp.status_code == 200, resp.text
        return int(resp.json()["total"])

    async def sub_account(self, parent: tuple[str, str] | None = None) -> tuple[str, str]:
        resp = await self.client.post(
            f"{self.root}/restcomm/2012-04-24/Accounts.json",
            data={"FriendlyName": "sub"},
            auth=parent or self.auth,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["sid"], resp.json()["auth_token"]


async def start_api(tmp_path: Path, **options: Any) -> AsyncIterator[Api]:
    store = await SqliteStore.open(tmp_path / "rcmlrouter.db")
    admin, token = await store.ensure_default_setup()
    assert token is not None
    await store.import_inventory(read_inventory_csv(DEMO_CSV))
    runner = ApiRunner(create_api_app(store, **options))  # the daemon's runner
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with httpx.AsyncClient(timeout=10) as client:
        yield Api(client, f"http://127.0.0.1:{port}", store, admin, token)
    await runner.cleanup()
    await store.close()


def sip_numbers(account: Account, count: int, prefix: str = "7") -> list[IncomingNumber]:
    """``count`` SIP dial-string numbers for bulk insertion."""
    now = time.time()
    return [
        IncomingNumber(
            sid=new_sid("PN"),
            account_sid=account.sid,
            organization_sid=account.organization_sid,
            phone_number=f"{prefix}{i:06d}",
            friendly_name=f"n{i}",
            is_sip=True,
            number_type="sip",
            beta=False,
            date_created=now,
            date_updated=now,
        )
        for i in range(count)
    ]
