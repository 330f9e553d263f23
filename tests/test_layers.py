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
SOCKET_OWNERS = ("rcmlrouter.sip.transport", "rcmlrouter.media.rtp", "rcmlrouter.systemd")
# The executor's ports: a leaf that calls/ and messaging/ implement, importing only the model.
LEAVES = {
    "rcmlrouter.rcml.ports": {"rcmlrouter.rcml.model"},
    "rcmlrouter.rcml.verb_handler": {"rcmlrouter.rcml.model", "rcmlrouter.rcml.ports"},
}
# The call wing in data-path tiers, lowest first: a module imports only modules of lower tiers,
# so the wing has no circle and a newcomer can read it bottom up. A new module must be placed.
CALLS_TIERS = (
    ("call_state", "live_call"),
    ("call_events", "in_dialog"),
    ("dialed_leg",),
    ("wiring",),
    ("documents", "recording", "recovery"),
    ("call_media", "transfer"),
    ("bridge",),
    ("inbound_leg", "transferred_call"),
    ("inbound_call",),
    ("supervisor",),
)


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
