"""Command line: run | init | check-config | route NUMBER | orgs | inventory | migrate.

Results go to stdout as JSON (one document, or one JSON object per line for ``orgs list`` and
``inventory list``); logs go to stderr, except for ``run``, which logs JSON lines to stdout.

The only place that turns errors into exit statuses: 0 success, 1 operational failure,
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from rcmlrouter.config import Config, load_config
from rcmlrouter.errors import ConfigError, ConflictError, RcmlRouterError
from rcmlrouter.logconfig import configure_logging

DEMO_NUMBER = "1234"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcmlrouter", description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon in the foreground")
    init = sub.add_parser("init", help="create the schema, default organization and admin")
    init.add_argument(
        "--demo", action="store_true", help=f"also provision SIP number {DEMO_NUMBER}"
    )
    sub.add_parser("check-config", help="validate the configuration and print it")
    migrate = sub.add_parser(
        "migrate", help="apply pending schema migrations, or copy one store into another"
    )
    migrate.add_argument("--from", dest="source", help="copy from this store URL (sqlite:///…)")
    migrate.add_argument("--to", dest="target", help="copy into this store URL (postgresql://…)")
    migrate.add_argument("--force", action="store_true", help="replace a non-empty target")
    route = sub.add_parser("route", help="show which number a dialed string reaches")
    route.add_argument("number")
    route.add_argument("--domain", help="destination organization domain")
    route.add_argument("--caller-domain", help="caller organization domain")
    orgs = sub.add_parser("orgs", help="organizations").add_subparsers(dest="action", required=True)
    orgs.add_parser("add").add_argument("domain")
    orgs.add_parser("list")
    inv = sub.add_parser("inventory", help="number inventory").add_subparsers(
        dest="action", required=True
    )
    inv.add_parser("import").add_argument("file")
    inv.add_parser("list")
    for sp in (*sub.choices.values(), *orgs.choices.values(), *inv.choices.values()):
        sp.add_argument("--config", "-c", default=argparse.SUPPRESS, help="TOML configuration file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"rcmlrouter: {exc}", file=sys.stderr)
        return 2
    # the daemon logs to stdout (STYLE 6); the other commands print their result there
    configure_logging(config.log.level, config.log.format, to_stderr=args.command != "run")
    command = _COMMANDS[args.command]
    try:
        return _run_async(command(config, args))
    except RcmlRouterError as exc:
        print(f"rcmlrouter: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130


def _run_async(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # optional speed-up, not on every platform
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _cmd_run(config: Config, _args: argparse.Namespace) -> int:
    from rcmlrouter.app import run_daemon

    await run_daemon(config)
    return 0


async def _cmd_init(config: Config, args: argparse.Namespace) -> int:
    from rcmlrouter.assembly.stores import open_store

    store = await open_store(config)
    try:
        admin, token = await store.ensure_default_setup()
        result: dict[str, Any] = {"account_sid": admin.sid}
        if token is None:
            result["auth_token"] = admin.auth_token
            result["message"] = "already initialised; the auth token is unchanged"
        else:
            result["auth_token"] = token
        if args.demo:
            result["demo_number"] = await _ensure_demo_number(store, admin, config)
    finally:
        await store.close()
    print(json.dumps(result))
    return 0


async def _ensure_demo_number(store: Any, admin: Any, config: Config) -> str:
    from rcmlrouter.store.ids import new_sid
    from rcmlrouter.store.records import IncomingNumber

    now = time.time()
    number = IncomingNumber(
        sid=new_sid("PN"),
        account_sid=admin.sid,
        organization_sid=admin.organization_sid,
        phone_number=DEMO_NUMBER,
        friendly_name="Demo: Pause then Hangup",
        is_sip=True,
        number_type="sip",
        beta=False,
        voice_url=f"{config.api_base_url}/demos/hello.xml",
        voice_method="GET",
        date_created=now,
        date_updated=now,
    )
    with contextlib.suppress(ConflictError):  # provisioned by an earlier run
        await store.create_number(number, from_inventory=False)
    return DEMO_NUMBER


async def _cmd_check_config(config: Config, _args: argparse.Namespace) -> int:
    import dataclasses

    print(json.dumps(dataclasses.asdict(config), indent=2))
    return 0


async def _cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    from rcmlrouter.assembly.stores import open_store

    if args.source or args.target:
        return await _copy_store(args.source, args.target, force=args.force)
    store = await open_store(config)  # opening applies pending migrations
    await store.close()
    print(json.dumps({"migrated": True}))
    return 0


async def _copy_store(source_url: str | None, target_url: str | None, *, force: bool) -> int:
    """``migrate --from URL --to URL``: copy every table; counts as JSON on stdout."""
    from rcmlrouter.assembly.stores import open_store_url
    from rcmlrouter.store.migrate_copy import copy_store

    if not source_url or not target_url:
        raise ConfigError(["migrate: --from and --to go together"])
    if not target_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(["migrate: --to must be a postgresql:// URL"])
    source = await open_store_url(source_url)
    try:
        target = await open_store_url(target_url)
        try:
            counts = await copy_store(source, target, force=force)
        finally:
            await target.close()
    finally:
        await source.close()
    print(json.dumps({"copied": counts}))
    return 0


async def _cmd_route(config: Config, args: argparse.Namespace) -> int:
    """Which number a dialed string reaches, with the resolver's steps (routing/explain.py:
    the same steps the console's "Which number answers?" page shows)."""
    from rcmlrouter.assembly.routing_load import load_snapshot
    from rcmlrouter.assembly.stores import open_store
    from rcmlrouter.directory import Directory
    from rcmlrouter.routing.explain import explain_route
    from rcmlrouter.routing.numbers import normalize_dialed

    store = await open_store(config)
    try:
        snapshot = await load_snapshot(store)
        directory = Directory(store)
        await directory.refresh_organizations()
        dest = await directory.organization_for(args.domain) or directory.default_organization
        caller = await directory.organization_for(args.caller_domain)
        if dest is None:
            raise ConfigError(["no organization exists; run `rcmlrouter init`"])
        dialed = normalize_dialed(args.number)
        region, caller_sid = config.routing.default_region, caller.sid if caller else None
        started = time.perf_counter_ns()
        match = snapshot.resolve(dialed, dest.sid, caller_sid, region)
        elapsed = time.perf_counter_ns() - started
        explained = explain_route(snapshot, dialed, dest.sid, caller_sid, region)
    finally:
        await store.close()
    out: dict[str, Any] = {"dialed": dialed, "organization": dest.domain, "resolve_ns": elapsed}
    if match is None:
        out["match"] = None
    else:
        out["match"] = {"sid": match.sid, "kind": match.kind, "phone_number": match.phone_number}
    out["steps"] = [step.as_dict() for step in explained.steps]
    print(json.dumps(out))
    return 0 if match else 1


async def _cmd_orgs(config: Config, args: argparse.Namespace) -> int:
    from rcmlrouter.assembly.stores import open_store

    store = await open_store(config)
    try:
        if args.action == "add":
            org = await store.add_organization(args.domain.strip().lower())
            print(json.dumps({"sid": org.sid, "domain": org.domain}))
        else:
            for org in await store.list_organizations():
                print(json.dumps({"sid": org.sid, "domain": org.domain, "default": org.is_default}))
    finally:
        await store.close()
    return 0


async def _cmd_inventory(config: Config, args: argparse.Namespace) -> int:
    from rcmlrouter.assembly.stores import open_store
    from rcmlrouter.store.filters import InventoryQuery
    from rcmlrouter.store.inventory_csv import read_inventory_csv

    entries = read_inventory_csv(args.file) if args.action == "import" else []
    store = await open_store(config)
    try:
        if args.action == "import":
            print(json.dumps({"imported": await store.import_inventory(entries)}))
            return 0
        for kind in ("local", "toll-free", "mobile"):
            query = InventoryQuery(iso_country="US", number_type=kind, limit=1000)
            for entry in await store.list_inventory(query, time.time()):
                print(
                    json.dumps(
                        {
                            "phone_number": entry.phone_number,
                            "type": entry.number_type,
                            "region": entry.region,
                            "assigned": entry.assigned_sid,
                        }
                    )
                )
    finally:
        await store.close()
    return 0


_COMMANDS: dict[str, Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "run": _cmd_run,
    "init": _cmd_init,
    "check-config": _cmd_check_config,
    "migrate": _cmd_migrate,
    "route": _cmd_route,
    "orgs": _cmd_orgs,
    "inventory": _cmd_inventory,
}
