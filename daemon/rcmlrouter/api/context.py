"""What handlers share: the store and the API settings, kept on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from rcmlrouter.store.base import Store


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """``recycle_after``: seconds before a released number is available again.

    ``public_base_url``: when set, relative webhook URLs (``/restcomm/demos/x.xml``) given to the
    API are resolved against it; otherwise they are refused with 21502.
    """

    recycle_after: float = 0.0
    public_base_url: str | None = None


STORE_KEY = web.AppKey("store", Store)
SETTINGS_KEY = web.AppKey("settings", ApiSettings)


def store_of(request: web.Request) -> Store:
    return request.app[STORE_KEY]


def settings_of(request: web.Request) -> ApiSettings:
    return request.app[SETTINGS_KEY]
