"""Cached reads of provisioning rows for the call path.

Routing itself never touches the store (the :class:`~rcmlrouter.routing.table.RoutingSnapshot`
does); once a number is chosen the call needs its row, its account's auth token (the signing key)
and maybe its application. Those rows are cached here: numbers until the store reports a change,
accounts and applications for a short time-to-live, organizations refreshed periodically.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

from rcmlrouter.store.base import Store
from rcmlrouter.store.records import (
    Account,
    Application,
    IncomingNumber,
    NumberChange,
    Organization,
)

T = TypeVar("T")


class _TtlCache(Generic[T]):
    """A bounded mapping whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, key: str) -> T | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: str, value: T) -> None:
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()


class Directory:
    """Organizations, numbers, accounts and applications as the call path sees them."""

    ORG_REFRESH_SECONDS = 10.0

    def __init__(self, store: Store, *, ttl: float = 30.0, size: int = 100_000) -> None:
        self.store = store
        self._numbers: _TtlCache[IncomingNumber] = _TtlCache(3600.0, size)
        self._accounts: _TtlCache[Account] = _TtlCache(ttl, size)
        self._applications: _TtlCache[Application] = _TtlCache(ttl, size)
        self._orgs_by_domain: dict[str, Organization] = {}
        self.default_organization: Organization | None = None
        self._orgs_loaded_at = 0.0

    async def refresh_organizations(self) -> None:
        orgs = await self.store.list_organizations()
        self._orgs_by_domain = {org.domain.lower(): org for org in orgs}
        self.default_organization = next((o for o in orgs if o.is_default), None)
        self._orgs_loaded_at = time.monotonic()

    async def organization_for(self, *hosts: str | None) -> Organization | None:
        """The first of ``hosts`` that is a known organization domain."""
        if time.monotonic() - self._orgs_loaded_at > self.ORG_REFRESH_SECONDS:
            await self.refresh_organizations()
        for host in hosts:
            if host:
                org = self._orgs_by_domain.get(host.lower())
                if org is not None:
                    return org
        return None

    def on_number_change(self, change: NumberChange) -> None:
        """Store change listener: forget the cached row and the applications it names.

        The store also reports the numbers of an updated or deleted application, so an
        application's new URLs are used from the next call on.
        """
        self._numbers.pop(change.sid)
        number = change.number
        if number is not None:
            for sid in (
                number.voice_application_sid,
                number.sms_application_sid,
                number.refer_application_sid,
            ):
                if sid:
                    self._applications.pop(sid)

    def forget_application(self, sid: str) -> None:
        """An application changed (in any process): read it again on next use."""
        self._applications.pop(sid)

    def forget_account(self, sid: str) -> None:
        """An account changed (token, status): read it again on next use."""
        self._accounts.pop(sid)

    def forget_all(self) -> None:
        """Drop every cached row (after a full reload of the routing snapshot)."""
        for cache in (self._numbers, self._accounts, self._applications):
            cache.clear()
        self._orgs_loaded_at = 0.0

    async def number(self, sid: str) -> IncomingNumber:
        cached = self._numbers.get(sid)
        if cached is None:
            cached = await self.store.get_number(sid)
            self._numbers.put(sid, cached)
        return cached

    async def account(self, sid: str) -> Account:
        cached = self._accounts.get(sid)
        if cached is None:
            cached = await self.store.get_account(sid)
            self._accounts.put(sid, cached)
        return cached

    async def application(self, sid: str) -> Application:
        cached = self._applications.get(sid)
        if cached is None:
            cached = await self.store.get_application(sid)
            self._applications.put(sid, cached)
        return cached

    async def auth_token(self, account_sid: str) -> str:
        return (await self.account(account_sid)).auth_token
