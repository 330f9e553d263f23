"""Which number answers? The resolver's steps for a dialed string, from
:func:`~rcmlrouter.routing.explain.explain_route` over the daemon's own routing snapshot: the
same steps ``rcmlrouter route`` prints.

A step about a number outside the viewer's account tree says so without its sid or pattern
(sub-accounts see only their own data).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import controls
from rcmlrouter.api.context import store_of
from rcmlrouter.console.access import page
from rcmlrouter.console.sources import sources_of
from rcmlrouter.console.templating import html
from rcmlrouter.console.visit import visit_of
from rcmlrouter.errors import NotFoundError
from rcmlrouter.routing.explain import RouteExplanation, RouteStep, explain_route
from rcmlrouter.routing.numbers import normalize_dialed
from rcmlrouter.store.base import Store
from rcmlrouter.store.records import Account, IncomingNumber, Organization

MAX_DIALED = 256


@page
async def explain(request: web.Request) -> web.StreamResponse:
    query = request.query
    raw = query.get("dialed", "")[:MAX_DIALED]
    domain = query.get("domain", "").strip()
    caller_domain = query.get("caller_domain", "").strip()
    context: dict[str, Any] = {"raw": raw, "domain": domain, "caller_domain": caller_domain}
    if raw.strip():
        context.update(await _explained(request, raw, domain, caller_domain))
    return html(request, "explain.html", **context)


async def _explained(
    request: web.Request, raw: str, domain: str, caller_domain: str
) -> dict[str, Any]:
    sources, visit = sources_of(request), visit_of(request)
    directory = sources.directory
    destination, notes = await _destination(request, domain)
    caller = await directory.organization_for(caller_domain) if caller_domain else None
    if destination is None:
        return {"notes": ["No organization exists yet (run rcmlrouter init)."]}
    dialed = normalize_dialed(raw)
    explained = explain_route(
        sources.snapshot,
        dialed,
        destination.sid,
        caller.sid if caller else None,
        sources.default_region,
    )
    shown, numbers = await _visible(store_of(request), visit.viewer, explained)
    return {
        "dialed": dialed,
        "organization": destination,
        "caller_organization": caller,
        "steps": shown,
        "match": explained.match,
        "matched": numbers.get(explained.match.sid) if explained.match else None,
        "notes": notes,
    }


async def _destination(request: web.Request, domain: str) -> tuple[Organization | None, list[str]]:
    """The organization a call for ``domain`` reaches (as the resolver picks it: an unknown
    domain is the default organization); without a domain, the acting account's own."""
    directory = sources_of(request).directory
    if domain:
        found = await directory.organization_for(domain)
        if found is not None:
            return found, []
        note = f"{domain!r} is not an organization's domain: a call reaches the default one."
        return directory.default_organization, [note]
    own = visit_of(request).acting.organization_sid
    organizations = await store_of(request).list_organizations()
    return next((o for o in organizations if o.sid == own), directory.default_organization), []


async def _visible(
    store: Store, viewer: Account, explained: RouteExplanation
) -> tuple[list[RouteStep], dict[str, IncomingNumber]]:
    """The steps, with numbers outside the viewer's tree made anonymous; the visible rows."""
    numbers: dict[str, IncomingNumber] = {}
    hidden: set[str] = set()
    for sid in {step.sid for step in explained.steps if step.sid}:
        try:
            number = await store.get_number(sid)
        except NotFoundError:  # released since the snapshot was read
            hidden.add(sid)
            continue
        if await controls(store, viewer, number.account_sid):
            numbers[sid] = number
        else:
            hidden.add(sid)
    steps = [_anonymous(step) if step.sid in hidden else step for step in explained.steps]
    return steps, numbers


def _anonymous(step: RouteStep) -> RouteStep:
    text = f"A number of another account ({step.stage} step): {step.outcome}."
    return replace(step, text=text, subject=None, sid=None)
