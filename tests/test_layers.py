"""The layering rules of STYLE.md, checked by reading every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "daemon" / "rcmlrouter"

# (module prefix, imports it must not make)
RULES = [
    (
        "rcmlrouter.sip",
        (
            "aiohttp",
            "aiosqlite",
            "asyncpg",
            "rcmlrouter.store",
            "rcmlrouter.api",
            "rcmlrouter.rcml",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.routing",
        ),
    ),
    (
        "rcmlrouter.routing",
        (
            "aiohttp",
            "aiosqlite",
            "asyncpg",
            "asyncio",
            "socket",
            "rcmlrouter.store",
            "rcmlrouter.sip",
            "rcmlrouter.api",
        ),
    ),
    ("rcmlrouter.rcml.parse", ("aiohttp", "asyncio", "socket", "rcmlrouter.store")),
    ("rcmlrouter.rcml.model", ("aiohttp", "asyncio", "socket", "rcmlrouter.store")),
    ("rcmlrouter.rcml.execute", ("aiohttp", "socket", "rcmlrouter.store", "rcmlrouter.sip")),
    (
        "rcmlrouter.rcml.media_verbs",
        ("aiohttp", "socket", "rcmlrouter.store", "rcmlrouter.sip", "rcmlrouter.media"),
    ),
    (
        "rcmlrouter.store",
        ("aiohttp", "rcmlrouter.sip", "rcmlrouter.api", "rcmlrouter.calls", "rcmlrouter.messaging"),
    ),
    ("rcmlrouter.api", ("rcmlrouter.sip", "rcmlrouter.calls", "rcmlrouter.messaging", "socket")),
    # what calls and messaging share lives below both of them
    ("rcmlrouter.services", ("rcmlrouter.calls", "rcmlrouter.messaging", "rcmlrouter.api")),
    ("rcmlrouter.callbacks", ("rcmlrouter.calls", "rcmlrouter.messaging", "rcmlrouter.api")),
    # a message never reaches into the call machinery (calls may send messages: <Sms>)
    ("rcmlrouter.messaging", ("rcmlrouter.calls", "rcmlrouter.api")),
    # the change feed and work claiming sit beside the store: app.py wires them to the rest
    (
        "rcmlrouter.cluster",
        (
            "aiohttp",
            "rcmlrouter.sip",
            "rcmlrouter.api",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.rcml",
        ),
    ),
]
RULES.append(
    (  # media is a leaf under calls: RTP, codecs, audio; it knows nothing of SIP or the store
        "rcmlrouter.media",
        (
            "rcmlrouter.sip",
            "rcmlrouter.store",
            "rcmlrouter.api",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.rcml",
            "rcmlrouter.cluster",
        ),
    )
)
RULES.append(
    (  # the one outbound HTTP client, a leaf: rcml (webhooks, callbacks) and media (<Play>) use it
        "rcmlrouter.httpclient",
        (
            "aiohttp",
            "rcmlrouter.sip",
            "rcmlrouter.store",
            "rcmlrouter.api",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.rcml",
            "rcmlrouter.media",
            "rcmlrouter.cluster",
        ),
    )
)
SOCKET_OWNERS = ("rcmlrouter.sip.transport", "rcmlrouter.media.rtp", "rcmlrouter.systemd")

# sip/transport.py's UDP sockets live in sip/udp.py (its TCP/TLS connections: the event loop's,
# opened in transport.py and sip/connector.py)
SOCKET_OWNERS += ("rcmlrouter.sip.udp",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def reaches(imported: set[str], forbidden: str) -> bool:
    return any(name == forbidden or name.startswith(forbidden + ".") for name in imported)


def test_no_layer_reaches_across() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        imported = imports(path)
        for prefix, forbidden in RULES:
            if name == prefix or name.startswith(prefix + "."):
                problems += [f"{name} imports {f}" for f in forbidden if reaches(imported, f)]
        if "socket" in imported and name not in SOCKET_OWNERS:
            problems.append(f"{name} imports socket (only transports own sockets)")
    assert problems == []


def test_the_rule_checker_can_fail() -> None:
    assert reaches({"aiohttp.web"}, "aiohttp")
    assert not reaches({"aiohttpx"}, "aiohttp")
