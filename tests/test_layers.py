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
    (  # verb handlers get the executor through verb_handler.VerbRunner, never import it
        "rcmlrouter.rcml.media_verbs",
        (
            "aiohttp",
            "socket",
            "rcmlrouter.store",
            "rcmlrouter.sip",
            "rcmlrouter.media",
            "rcmlrouter.rcml.execute",
        ),
    ),
    (
        "rcmlrouter.store",
        ("aiohttp", "rcmlrouter.sip", "rcmlrouter.api", "rcmlrouter.calls", "rcmlrouter.messaging"),
    ),
    (
        "rcmlrouter.api",
        (
            "rcmlrouter.sip",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.console",
            "socket",
        ),
    ),
    # the console sits on the API: it shows what the API's code answers, nothing of the call path
    (
        "rcmlrouter.console",
        (
            "rcmlrouter.sip",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.media",
            "rcmlrouter.rcml",
            "rcmlrouter.cluster",
            "socket",
        ),
    ),
    # what calls and messaging share lives below both of them; complete when built (no SIP)
    (
        "rcmlrouter.services",
        ("rcmlrouter.calls", "rcmlrouter.messaging", "rcmlrouter.api", "rcmlrouter.sip"),
    ),
    ("rcmlrouter.callbacks", ("rcmlrouter.calls", "rcmlrouter.messaging", "rcmlrouter.api")),
    # records retention works on the store and the data directory only
    (
        "rcmlrouter.retention",
        ("rcmlrouter.calls", "rcmlrouter.messaging", "rcmlrouter.api", "rcmlrouter.sip"),
    ),
    # a message never reaches into the call machinery (calls may send messages: <Sms>); it runs
    # SMS documents over the executor's ports, not the voice executor
    ("rcmlrouter.messaging", ("rcmlrouter.calls", "rcmlrouter.api", "rcmlrouter.rcml.execute")),
    # phone formatting lives in routing/numbers.py; calls reach HTTP only through rcml/
    ("rcmlrouter.calls", ("phonenumbers", "aiohttp", "rcmlrouter.api", "rcmlrouter.messaging")),
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
RULES.append(
    (  # what an SMS is (segments, body limit, address forms): shared by api and messaging
        "rcmlrouter.sms_format",
        ("rcmlrouter.api", "rcmlrouter.messaging", "rcmlrouter.sip", "rcmlrouter.store"),
    )
)
RULES.append(
    (  # what a live call update is: shared by the API, the call wing and the cluster, a leaf
        "rcmlrouter.call_updates",
        (
            "rcmlrouter.api",
            "rcmlrouter.calls",
            "rcmlrouter.cluster",
            "rcmlrouter.sip",
            "rcmlrouter.store",
            "rcmlrouter.rcml",
            "aiohttp",
            "asyncpg",
        ),
    )
)
RULES.append(
    (  # conferences sit under the call wing: rooms, the mixer, events; no SIP, no HTTP, no API
        "rcmlrouter.conference",
        (
            "aiohttp",
            "socket",
            "rcmlrouter.sip",
            "rcmlrouter.api",
            "rcmlrouter.calls",
            "rcmlrouter.messaging",
            "rcmlrouter.rcml",
            "rcmlrouter.cluster",
            "rcmlrouter.console",
        ),
    )
)
RULES.append(
    (  # media streams: the WebSocket wire protocol, the socket, the agent's audio on the media
        # clock; below the call wing (calls/call_streams.py uses it), above media
        "rcmlrouter.streams",
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
RULES.append(  # the wire protocol is sans-I/O
    ("rcmlrouter.streams.wire", ("aiohttp", "asyncio", "socket", "rcmlrouter.media"))
)
RULES.append(("rcmlrouter.rcml.parse_streams", ("aiohttp", "asyncio", "socket")))
RULES.append(
    (  # stream verbs, like media verbs, reach the call through ports only
        "rcmlrouter.rcml.stream_verbs",
        ("aiohttp", "socket", "rcmlrouter.streams", "rcmlrouter.media", "rcmlrouter.execute"),
    )
)
# The composition root (app.py and the parts it assembles the daemon from) sits on top: only the
# command line reaches it.
COMPOSITION = ("rcmlrouter.app", "rcmlrouter.assembly", "rcmlrouter.cli")
SOCKET_OWNERS = ("rcmlrouter.sip.transport", "rcmlrouter.media.rtp", "rcmlrouter.systemd")
# The executor's ports: a leaf that calls/ and messaging/ implement, importing only the model.
LEAVES = {
    "rcmlrouter.rcml.ports": {"rcmlrouter.rcml.model"},
    "rcmlrouter.rcml.verb_handler": {"rcmlrouter.rcml.model", "rcmlrouter.rcml.ports"},
}
# The call wing in data-path tiers, lowest first: a module imports only modules of lower tiers,
# so the wing has no circle and a newcomer can read it bottom up. A new module must be placed.
CALLS_TIERS = (
    ("call_state", "live_call", "pacing", "trunk_chain"),
    ("call_events", "in_dialog"),
    ("dialed_leg",),
    ("outbound_address",),
    ("wiring",),
    ("documents", "recording", "recovery"),
    ("call_media", "transfer"),
    ("bridge", "call_streams"),
    ("conference_call",),
    ("media_leg",),
    ("inbound_leg", "transferred_call", "conference_leg", "outbound_leg"),
    ("inbound_call", "outbound_call"),
    ("supervisor",),
    ("live_control",),  # live call control (POST Calls/{CA}) acts on the supervisor's calls
    ("originate",),
)

# sip/transport.py's UDP sockets live in sip/udp.py (its TCP/TLS connections: the event loop's,
# opened in transport.py and sip/connector.py)
SOCKET_OWNERS += ("rcmlrouter.sip.udp",)
# the media streams' TCP connections to agents: picows takes a connected socket from a factory,
# made here to the addresses the deny list allowed (streams/tcp.py)
SOCKET_OWNERS += ("rcmlrouter.streams.tcp",)


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
        if not name.startswith(COMPOSITION):
            top = [f for f in ("rcmlrouter.app", "rcmlrouter.assembly") if reaches(imported, f)]
            problems += [f"{name} imports {f} (the composition root is on top)" for f in top]
    assert problems == []


def test_the_executor_ports_are_a_leaf() -> None:
    for name, allowed in LEAVES.items():
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        own = {m for m in imports(path) if m.startswith("rcmlrouter")}
        assert own <= allowed, f"{name} imports {sorted(own - allowed)}"


def calls_tier_problems(package: Path) -> list[str]:
    tier = {f"rcmlrouter.calls.{m}": i for i, names in enumerate(CALLS_TIERS) for m in names}
    problems = []
    for path in sorted((package / "calls").glob("*.py")):
        name = f"rcmlrouter.calls.{path.stem}"
        if path.stem == "__init__":
            continue
        if name not in tier:
            problems.append(f"{name} has no tier in CALLS_TIERS")
            continue
        for imported in sorted(imports(path)):
            if imported.startswith("rcmlrouter.calls.") and tier.get(imported, 99) >= tier[name]:
                problems.append(f"{name} imports {imported} (not a lower tier)")
    return problems


def test_the_call_wing_imports_only_downwards() -> None:
    assert calls_tier_problems(PACKAGE) == []


def test_only_in_dialog_puts_callbacks_on_sip_calls() -> None:
    """Who owns a call's re-INVITEs and in-dialog requests is explicit (calls/in_dialog.py)."""
    slots = (".on_reinvite(", ".on_in_dialog_request(")
    for path in sorted((PACKAGE / "calls").glob("*.py")):
        text = path.read_text()
        if path.name != "in_dialog.py":
            assert not any(slot in text for slot in slots), f"{path.name} sets a SIP call slot"


def test_the_rule_checker_can_fail(tmp_path: Path) -> None:
    wing = tmp_path / "calls"
    wing.mkdir()
    (wing / "call_state.py").write_text("from rcmlrouter.calls.supervisor import CallSupervisor\n")
    (wing / "stray.py").write_text("")
    assert calls_tier_problems(tmp_path) == [
        "rcmlrouter.calls.call_state imports rcmlrouter.calls.supervisor (not a lower tier)",
        "rcmlrouter.calls.stray has no tier in CALLS_TIERS",
    ]
    assert reaches({"aiohttp.web"}, "aiohttp")
    assert not reaches({"aiohttpx"}, "aiohttp")


# --- import circles ------------------------------------------------------------------------


def module_of(path: Path, root: Path) -> str:
    """The dotted name of ``path`` in the package at ``root`` (``root.name`` is its name)."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dynamic_import(node: ast.AST) -> str | None:
    """``importlib.import_module("a.b")`` / ``__import__("a.b")`` with a constant name."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
        return str(first.value)
    return None


def module_imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that ``path`` imports, wherever the statement stands: at
    module level, inside a function or method, under ``if TYPE_CHECKING:`` or ``try:``.
    ``from a.b import c`` is the module ``a.b.c`` when that is one, else ``a.b`` (a name from
    its ``__init__``); relative imports are resolved against the importing module's package."""
    name = module_of(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        elif (dynamic := _dynamic_import(node)) is not None:
            found.add(dynamic)
    return found & modules


def import_graph(root: Path) -> dict[str, set[str]]:
    paths = {module_of(path, root): path for path in sorted(root.rglob("*.py"))}
    return {name: module_imports(path, root, set(paths)) for name, path in paths.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the sets of modules that all reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while (member := stack.pop()) != node:
                component.add(member)
            components.append(component | {node})

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_path(
    graph: dict[str, set[str]], start: str, goal: str, within: set[str]
) -> list[str]:
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for target in sorted(graph[node] & within):
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return paths[goal]


def import_circles(root: Path) -> list[str]:
    """Every import circle of the package at ``root``, each as a path ``a → b → … → a``: for
    each import inside a set of modules that reach each other, the shortest circle through it
    (so every import that closes a circle shows up in at least one path)."""
    graph = import_graph(root)
    circles: set[tuple[str, ...]] = set()
    for component in strongly_connected(graph):
        for source in component:
            for target in graph[source] & component:
                path = [source, *_shortest_path(graph, target, source, component)]
                ring = path[:-1]
                first = ring.index(min(ring))
                circles.add(tuple(ring[first:] + ring[:first]))
    return sorted(" → ".join([*ring, ring[0]]) for ring in circles)


def test_no_import_circles() -> None:
    """No two modules of daemon/rcmlrouter import each other, directly or around a circle.

    Every import counts, wherever it stands: at module level, inside a function (a circle a
    reader of the file's head does not see; it still runs, later), relative ones, and those
    under ``if TYPE_CHECKING:``. A ``TYPE_CHECKING`` import never runs, so a circle through one
    cannot fail at import time: it is a typing circle. It counts all the same, because the
    rule is about the design, not the import machinery: such a module cannot be read,
    type-checked or reused without the other (the sip/endpoint ↔ sip/server circle of issue 17
    existed only through a ``TYPE_CHECKING`` import). The cure is a protocol owned by the
    module that needs it (``CallHost`` in sip/call.py, ``ServerHost`` in sip/server.py), not
    an import moved out of sight.
    """
    circles = import_circles(PACKAGE)
    assert not circles, "import circles:\n  " + "\n  ".join(circles)


def test_the_circle_detector_can_fail(tmp_path: Path) -> None:
    files = {
        "__init__.py": "",
        "a.py": "from pkg.sub import b\n",  # `from package import module`
        "sub/__init__.py": "from pkg import g\n\nhelper = 1\n",
        "sub/b.py": "def late():\n    from ..c import value\n",  # function-level, relative
        "c.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import pkg.a\n",
        "d.py": "import pkg.a\nfrom pkg import c\n",  # imports into a circle: not in one
        "e.py": "from . import f\n",
        "f.py": "import importlib\n\nimportlib.import_module('pkg.e')\n",
        "g.py": "def late():\n    from pkg.sub import helper\n",  # a name of the package
    }
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert import_circles(tmp_path / "pkg") == [
        "pkg.a → pkg.sub.b → pkg.c → pkg.a",
        "pkg.e → pkg.f → pkg.e",
        "pkg.g → pkg.sub → pkg.g",
    ]
