"""The operator console: server-rendered pages at ``/console/`` on the API port.

Every page shows what the API or the code the API uses returns: numbers are created, changed
and released through the API's own operations (``api/numbers.py``), accounts through
``api/accounts.py``, sign-in goes through the API's authentication (``api/auth.py``) and its
failure guard, records come from the store queries the API lists them with, and "Which number
answers?" is :func:`rcmlrouter.routing.explain.explain_route` over the daemon's own routing
snapshot (as ``rcmlrouter route`` prints it). The console adds sessions, CSRF tokens, HTML and a
little plain JavaScript (``static/console.js``: live updates over server-sent events, charts as
inline SVG, the pattern check), nothing else.

Modules: ``routes`` (mounting), ``sources`` (what the daemon lends), ``sessions``, ``access``
(session and CSRF checks, error pages), ``templating``, then one module per page group.
"""

from rcmlrouter.console.routes import mount_console
from rcmlrouter.console.sources import ConsoleSources

__all__ = ["ConsoleSources", "mount_console"]
