"""Mounting the console on the API application at ``/console/``."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from aiohttp import web

from rcmlrouter.console import accounts, call, explain, health, live, logs, numbers, signin
from rcmlrouter.console.access import SESSIONS_KEY, as_html, error_page
from rcmlrouter.console.live import STOPPING_KEY
from rcmlrouter.console.sessions import SessionStore
from rcmlrouter.console.sources import SOURCES_KEY, ConsoleSources
from rcmlrouter.console.templating import see_other

STATIC = Path(str(resources.files("rcmlrouter.console").joinpath("static")))


async def _home(_request: web.Request) -> web.StreamResponse:
    return see_other("/console/numbers")


async def _not_found(request: web.Request) -> web.StreamResponse:
    async def run() -> web.StreamResponse:
        return error_page(request, 404, f"No console page at {request.path}.")

    return await as_html(request, run)


async def _stop_streams(app: web.Application) -> None:
    """Shutdown: end the server-sent event streams so the API can close at once."""
    app[STOPPING_KEY].set()


def mount_console(app: web.Application, sources: ConsoleSources) -> None:
    """Add the console's routes, sessions and static files to the API application ``app``."""
    app[SOURCES_KEY] = sources
    app[SESSIONS_KEY] = SessionStore(sources.session_timeout)
    app[STOPPING_KEY] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)
    add = app.router
    add.add_get("/console", _home)
    add.add_get("/console/", _home)
    add.add_get("/console/signin", signin.show_sign_in)
    add.add_post("/console/signin", signin.submit_sign_in)
    add.add_post("/console/signout", signin.sign_out)
    add.add_get("/console/numbers", numbers.list_numbers)
    add.add_get("/console/numbers/new", numbers.new_number)
    add.add_post("/console/numbers/new", numbers.create_number)
    add.add_get("/console/numbers/check", numbers.check_number)
    add.add_get("/console/numbers/{sid}", numbers.edit_number)
    add.add_post("/console/numbers/{sid}", numbers.update_number)
    add.add_get("/console/numbers/{sid}/release", numbers.confirm_release)
    add.add_post("/console/numbers/{sid}/release", numbers.release)
    add.add_get("/console/explain", explain.explain)
    add.add_get("/console/live", live.live_page)
    add.add_get("/console/live/stream", live.live_stream)
    add.add_get("/console/calls", logs.call_log)
    add.add_get("/console/calls/{sid}", call.call_page)
    add.add_post("/console/calls/{sid}/control", call.control_call)
    add.add_get("/console/messages", logs.message_log)
    add.add_get("/console/health", health.health_page)
    add.add_get("/console/health/stream", health.health_stream)
    add.add_get("/console/accounts", accounts.accounts_page)
    add.add_post("/console/accounts", accounts.create_account)
    add.add_post("/console/accounts/{sid}", accounts.change_account)
    add.add_static("/console/static/", STATIC, append_version=False)
    add.add_route("*", "/console/{tail:.*}", _not_found)
