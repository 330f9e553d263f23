"""Opening the store named by the configuration (the daemon and the command line both do)."""

from __future__ import annotations

from rcmlrouter.cluster.node import node_id_for
from rcmlrouter.config import Config, sqlite_path
from rcmlrouter.errors import ConfigError
from rcmlrouter.store.base import Store
from rcmlrouter.store.postgres import PostgresStore
from rcmlrouter.store.sqlite import SqliteStore


async def open_store(config: Config) -> Store:
    """The store named by ``store.url`` (schema migrated on open)."""
    return await open_store_url(config.store.url, node_id=node_id_for(config))


async def open_store_url(url: str, *, node_id: str = "") -> Store:
    """``sqlite:///PATH`` or ``postgresql://…`` / ``postgres://…`` (schema migrated on open);
    ``node_id`` owns what this process writes on PostgreSQL (``cluster/work.py``)."""
    if url.startswith("sqlite:///"):
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return await SqliteStore.open(path)
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresStore.open(url, node_id=node_id)
    raise ConfigError([f"store.url: unsupported store {url.split(':', 1)[0]!r} in this build"])
