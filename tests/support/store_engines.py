"""One engine of the store contract suite: how to open it, how to look at it from outside."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcmlrouter.assembly.stores import open_store_url
from rcmlrouter.store.base import Store
from support.pg import psql_value


@dataclass
class Engine:
    """How to open a store of one engine, and to look at it from a second connection."""

    name: str
    url: str
    schema: str = ""
    path: Path | None = None

    async def open(self) -> Store:
        return await open_store_url(self.url)

    def count(self, table: str, where: str = "TRUE", *params: Any) -> int:
        """Rows in ``table`` matching ``where``, read through a separate connection (sync)."""
        sql = f"SELECT COUNT(*) FROM {table} WHERE {where}"
        if self.path is not None:
            with sqlite3.connect(self.path) as other:
                return int(other.execute(sql.replace("TRUE", "1"), params).fetchone()[0])
        for value in params:  # psql takes no bound parameters; tests pass plain sids
            sql = sql.replace("?", f"'{value}'", 1)
        return int(psql_value(self.schema, sql))
