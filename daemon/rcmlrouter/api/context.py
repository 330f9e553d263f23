"""What handlers share: the store and the API settings, kept on the aiohttp application."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from aiohttp import web

from rcmlrouter.call_updates import CallControl
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import Account, MessageRecord

T_contra = TypeVar("T_contra", contravariant=True)


class WorkQueue(Protocol[T_contra]):
    """Where the API hands work it has queued in the store (a message to send; a call to dial
    next). The composition root wires it to the worker that does the work in this process; when
    none is wired, the work waits in the store for the next start."""

    def full(self) -> bool:
        """True while no more should be accepted (the API answers 429)."""
        ...

    def submit(self, item: T_contra) -> None:
        """``item`` is durable in the store: start it (never blocks, never raises)."""
        ...


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """``recycle_after``: seconds before a released number is available again.

    ``public_base_url``: when set, relative webhook URLs (``/restcomm/demos/x.xml``) given to the
    API are resolved against it; otherwise they are refused with 21502.
    """

    recycle_after: float = 0.0
    public_base_url: str | None = None
    token_grace: float = 86400.0  # seconds a rotated-out AuthToken still authenticates
    on_account_change: Callable[[str], None] | None = None  # the call path's account cache
    # POST Messages: who sends a queued message; the SMS gateway ("" = none: a message to a
    # phone number is refused with 21612; None = not known here, not checked)
    messages: WorkQueue[MessageRecord] | None = None
    sms_gateway: str | None = None


@dataclass(slots=True)
class AccountCache:
    """Accounts read for authentication, kept ``ttl`` seconds: one store round trip less per
    request. An account updated through the API (FriendlyName, Status) is put back fresh; a
    status or token changed by the CLI is seen within ``ttl``."""

    ttl: float = 5.0
    size: int = 10_000
    _items: dict[str, tuple[float, Account]] = field(default_factory=dict)

    def get(self, key: str) -> Account | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: str, account: Account) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, account)

    def clear(self) -> None:
        """Forget every account: one changed (a rotated token, a closed account), here or on
        another node (the change feed calls this)."""
        self._items.clear()


STORE_KEY = web.AppKey("store", Store)
ACCOUNTS_KEY = web.AppKey("accounts", AccountCache)
SETTINGS_KEY = web.AppKey("settings", ApiSettings)
CALL_CONTROL_KEY = web.AppKey("call_control", CallControl)  # absent: no live call control


def store_of(request: web.Request) -> Store:
    return request.app[STORE_KEY]


def settings_of(request: web.Request) -> ApiSettings:
    return request.app[SETTINGS_KEY]


def call_control_of(app: web.Application) -> CallControl | None:
    """Where ``POST Calls/{CA}`` sends updates (wired by the composition root)."""
    return app.get(CALL_CONTROL_KEY)


def accounts_of(request: web.Request) -> AccountCache:
    return request.app[ACCOUNTS_KEY]
