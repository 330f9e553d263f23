"""The provisioning API application: routes, the error middleware, the factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from rcmlrouter.api import (
    accounts,
    applications,
    available,
    call_update,
    calls_create,
    conferences,
    messages,
    numbers,
    openapi,
    participants_create,
    recordings,
    records,
    streams,
)
from rcmlrouter.api.auth_guard import AUTH_FAILURES_KEY, AuthFailures
from rcmlrouter.api.context import (
    ACCOUNTS_KEY,
    CALL_CONTROL_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    AccountCache,
    ApiSettings,
    CallSettings,
    WorkQueue,
)
from rcmlrouter.api.flavour import RESTCOMM, TWILIO
from rcmlrouter.api.idempotency import prune_context
from rcmlrouter.api.render import render_error
from rcmlrouter.call_updates import CallControl
from rcmlrouter.errors import ApiError, StoreUnavailableError
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import MessageRecord

log = structlog.get_logger()

BASES = (*RESTCOMM.bases, *TWILIO.bases)  # one implementation, two flavours (api/flavour.py)
MAX_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_ERRORS = {
    404: ApiError(404, 20404, "The requested resource was not found"),
    405: ApiError(405, 20001, "Method not allowed on this resource"),
    413: ApiError(400, 20001, f"Request body larger than {MAX_BODY} bytes"),
}


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    known = _HTTP_ERRORS.get(exc.status)
    if known is not None:
        return known
    return ApiError(exc.status, 20001 if exc.status < 500 else 20500, exc.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place API errors become responses; the unexpected ones are logged once."""
    try:
        return await handler(request)
    except ApiError as exc:
        return render_error(request, exc)
    except StoreUnavailableError as exc:  # the database is unreachable: try again later
        log.warning("api.store_unavailable", path=request.path, error=str(exc))
        response = render_error(request, ApiError(503, 20503, "Service unavailable, retry later"))
        response.headers["Retry-After"] = "5"
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render_error(request, _from_http_exception(exc))
    except Exception:
        log.exception("api.unhandled_error", method=request.method, path=request.path)
        return render_error(request, ApiError(500, 20500, "Internal server error"))


def _add(router: web.UrlDispatcher, methods: tuple[str, ...], path: str, handler: Handler) -> None:
    """``path`` under both bases; a path ending in a fixed name also gets ``.json``/``.xml``."""
    suffixes = ("",) if path.endswith("}") else ("", ".json", ".xml")
    for base in BASES:
        for suffix in suffixes:
            for method in methods:
                router.add_route(method, f"{base}{path}{suffix}", handler)


def add_routes(router: web.UrlDispatcher) -> None:
    acc = "/Accounts/{account_sid}"
    rw = ("GET", "POST", "PUT", "DELETE")
    _add(router, ("GET", "POST"), "/Accounts", accounts.handle_list_resource)
    _add(router, ("GET", "POST", "PUT"), acc, accounts.handle_instance)
    _add(router, ("GET", "POST"), f"{acc}/IncomingPhoneNumbers", numbers.handle_list_resource)
    _add(router, rw, f"{acc}/IncomingPhoneNumbers/{{sid}}", numbers.handle_instance_resource)
    _add(
        router,
        ("GET",),
        f"{acc}/AvailablePhoneNumbers/{{country}}/{{kind}}",
        available.handle_available,
    )
    _add(router, ("GET", "POST"), f"{acc}/Applications", applications.handle_list_resource)
    _add(router, rw, f"{acc}/Applications/{{sid}}", applications.handle_instance)
    _add(router, ("GET", "POST"), f"{acc}/Calls", calls_create.handle_list_resource)
    _add(router, ("GET", "POST"), f"{acc}/Calls/{{sid}}", call_update.handle_instance)
    for path in (f"{acc}/SMS/Messages", f"{acc}/Messages"):  # GET lists, POST sends
        _add(router, ("GET", "POST"), path, messages.handle_list_resource)
        _add(router, ("GET",), f"{path}/{{sid}}", records.handle_message)
    _add(router, ("GET",), f"{acc}/Recordings", recordings.handle_recordings)
    _add(router, ("GET",), f"{acc}/Recordings/{{sid}}", recordings.handle_recording)
    calls_recordings = f"{acc}/Calls/{{call_sid}}/Recordings"
    _add(router, ("GET",), calls_recordings, recordings.handle_call_recordings)
    conference = f"{acc}/Conferences/{{conference_sid}}"
    _add(router, ("GET",), f"{acc}/Conferences", conferences.handle_conferences)
    _add(router, ("GET", "POST"), f"{acc}/Conferences/{{sid}}", conferences.handle_conference)
    _add(
        router,
        ("GET", "POST"),
        f"{conference}/Participants",
        participants_create.handle_participants_resource,
    )
    _add(router, ("GET",), f"{conference}/Recordings", conferences.handle_conference_recordings)
    participant = f"{conference}/Participants/{{sid}}"
    _add(router, ("GET", "POST", "DELETE"), participant, conferences.handle_participant)
    _add(router, ("POST",), f"{acc}/Calls/{{call_sid}}/Streams", streams.handle_create)
    _add(router, ("POST",), f"{acc}/Calls/{{call_sid}}/Streams/{{sid}}", streams.handle_update)
    _add(router, ("GET",), f"{acc}/Notifications", records.handle_notifications)
    _add(router, ("GET",), f"{acc}/Notifications/{{sid}}", records.handle_notification)
    router.add_get("/openapi.json", openapi.handle_openapi)


def create_api_app(
    store: Store,
    *,
    recycle_after: float = 0,
    public_base_url: str | None = None,
    recordings_dir: Path | None = None,
    auth_fail_limit: int = 10,
    auth_fail_window: float = 60.0,
    token_grace: float = 86400.0,
    on_account_change: Callable[[str], None] | None = None,
    message_queue: WorkQueue[MessageRecord] | None = None,
    sms_gateway: str | None = None,
    calls: CallSettings | None = None,
    call_control: CallControl | None = None,
) -> web.Application:
    """The aiohttp application of the provisioning API, bound to ``store``.

    ``recycle_after``: seconds a released provider number stays out of the inventory.
    ``public_base_url``: base for relative webhook URLs (else they are refused, 21502).
    ``recordings_dir``: where ``<Record>`` audio is (``{AC}/{RE}.wav``); None: none is served.
    ``auth_fail_limit`` failed authentications per address in ``auth_fail_window`` seconds,
    then 429; ``token_grace``: seconds a rotated-out AuthToken still works;
    ``on_account_change(sid)``: an account's status or token changed (the call path's cache).
    ``message_queue``: sends the messages POST Messages queued (None: they wait in the store
    for the daemon); ``sms_gateway``: the ``[sms] gateway`` ("" refuses phone-number ``To``
    with 21612; None does not check). ``calls``: POST Calls' queue and settings (None: calls
    wait in the store, any number is accepted). ``call_control``: where commands about live
    calls go, ``POST Calls/{CA}`` updates and ``Calls/{CA}/Streams`` (None: updates are refused
    with 503, every call is 404 to Streams). Expired Idempotency-Key
    records are pruned while the application runs (``api/idempotency.py``).
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    if recordings_dir is not None:
        app[recordings.RECORDINGS_DIR_KEY] = recordings_dir
    app[STORE_KEY] = store
    app[ACCOUNTS_KEY] = AccountCache()
    call_settings = calls or CallSettings()
    app[SETTINGS_KEY] = ApiSettings(
        recycle_after,
        public_base_url,
        token_grace,
        on_account_change,
        message_queue,
        sms_gateway,
        call_settings.queue,
        call_settings.can_dial_numbers,
        call_settings.caller_id,
        call_settings.default_region,
    )
    app.cleanup_ctx.append(prune_context(store))
    app[AUTH_FAILURES_KEY] = AuthFailures(auth_fail_limit, auth_fail_window)
    if call_control is not None:
        app[CALL_CONTROL_KEY] = call_control
    add_routes(app.router)
    return app
