"""HTML from Jinja2 templates shipped in the package (``templates/``), autoescaped, with the
console's security headers on every page."""

from __future__ import annotations

import time
from typing import Any

import jinja2
from aiohttp import web

from rcmlrouter import __version__
from rcmlrouter.console.visit import VISIT_KEY

# Only the console's own files: no inline script or style, no framing, forms post here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def when(seconds: float | None) -> str:
    """POSIX seconds as ``YYYY-MM-DD HH:MM:SS`` UTC; an empty string for None."""
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def duration(seconds: float | None) -> str:
    """``1:05`` (m:ss) or ``1:02:05``; empty for None."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rcmlrouter.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    env.globals["version"] = __version__
    return env


ENVIRONMENT = _environment()


def html(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """Render ``template`` for this request (its visit, if signed in, is in the context)."""
    context.setdefault("visit", request.get(VISIT_KEY))
    context.setdefault("page", template.removesuffix(".html"))
    body = ENVIRONMENT.get_template(template).render(**context)
    response = web.Response(text=body, status=status, content_type="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


def fragment(template: str, **context: Any) -> str:
    """A partial template rendered to a string (server-sent events carry these)."""
    return ENVIRONMENT.get_template(template).render(**context)


def see_other(location: str) -> web.Response:
    """303 to ``location`` (after a form: the browser GETs it)."""
    response = web.Response(status=303, headers={"Location": location})
    response.headers.update(SECURITY_HEADERS)
    return response
