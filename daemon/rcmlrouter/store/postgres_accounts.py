# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Organizations and accounts on PostgreSQL."""

from __future__ import annotations

import time

import asyncpg

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.base import (
    DEFAULT_DOMAIN,
    Account,
    Organization,
    Page,
    hash_password,
    new_auth_token,
    new_sid,
)
from rcmlrouter.store.postgres_core import numbered
from rcmlrouter.store.postgres_messages import MessageQueries
from rcmlrouter.store.sqlite_accounts import (
    ACCOUNT_UPDATE,
    NEW_KEY_SQL,
    PURGE_RETIRED_SQL,
    RETIRE_SQL,
    RETIRED_VALID_SQL,
    account_list_sql,
)

_ACCOUNT_INSERT_Q = f"INSERT INTO accounts ({rows.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
_ACCOUNT_INSERT = numbered(_ACCOUNT_INSERT_Q)


class AccountQueries(MessageQueries):
    """Organizations, accounts and the account tree."""

    async def ensure_default_setup(self) -> tuple[Account, str | None]:
        """Create the default organization and administrator when missing.

        Nodes starting together on one database serialise on an advisory lock, so exactly one
        of them creates the administrator.
        """

        async def unit(conn: asyncpg.Connection) -> tuple[Account, str | None]:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rcmlrouter.default'))")
            now = time.time()
            org_sid = await conn.fetchval("SELECT sid FROM organizations WHERE is_default = 1")
            if org_sid is None:
                org_sid = new_sid("OR")
                await conn.execute(
                    f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES ($1, $2, 1, $3)",
                    org_sid,
                    DEFAULT_DOMAIN,
                    now,
                )
            existing = await conn.fetchrow(
                f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE parent_sid IS NULL "
                "AND organization_sid = $1 ORDER BY date_created, sid LIMIT 1",
                org_sid,
            )
            if existing is not None:
                return rows.to_account(tuple(existing)), None
            token = new_auth_token()
            admin = Account(
                new_sid("AC"),
                None,
                org_sid,
                "Default Administrator Account",
                f"administrator@{DEFAULT_DOMAIN}",
                token,
                None,
                "active",
                now,
                now,
            )
            await conn.execute(_ACCOUNT_INSERT, *rows.field_values(admin))
            return admin, token

        return await self.write(unit)

    async def add_organization(self, domain: str) -> Organization:
        org = Organization(new_sid("OR"), domain.strip().lower(), False, time.time())
        await self.execute_many(
            f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES (?, ?, 0, ?)",
            [(org.sid, org.domain, org.date_created)],
        )
        return org

    async def list_organizations(self) -> list[Organization]:
        found = await self.fetchall(
            f"SELECT {rows.ORG_COLUMNS} FROM organizations ORDER BY is_default DESC, domain"
        )
        return [rows.to_organization(row) for row in found]

    async def get_account(self, sid: str) -> Account:
        row = await self.fetchone(
            f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no account {sid}")
        return rows.to_account(row)

    async def get_account_by_email(self, email: str) -> Account:
        row = await self.fetchone(
            f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE email = ?", (email.lower(),)
        )
        if row is None:
            raise NotFoundError(f"no account with email {email}")
        return rows.to_account(row)

    async def account_lineage(self, sid: str) -> list[str]:
        """``[sid, parent, grandparent, …]``; empty when the account does not exist."""
        found = await self.fetchall(
            "WITH RECURSIVE lineage (sid, parent_sid, depth) AS ("
            " SELECT sid, parent_sid, 0 FROM accounts WHERE sid = ?"
            " UNION ALL SELECT a.sid, a.parent_sid, l.depth + 1 FROM accounts a"
            " JOIN lineage l ON a.sid = l.parent_sid WHERE l.depth < 64)"
            " SELECT sid FROM lineage ORDER BY depth",
            (sid,),
        )
        return [row[0] for row in found]

    async def create_account(
        self, parent: Account, friendly_name: str, email: str | None, password: str | None
    ) -> Account:
        """A sub-account of ``parent`` in its organization. Duplicate email: ConflictError."""
        now = time.time()
        account = Account(
            new_sid("AC"),
            parent.sid,
            parent.organization_sid,
            friendly_name,
            email.lower() if email else None,
            new_auth_token(),
            hash_password(password) if password else None,
            "active",
            now,
            now,
        )
        await self.execute_many(_ACCOUNT_INSERT_Q, [rows.field_values(account)])
        return account

    async def update_account(self, account: Account) -> Account:
        """Store ``account``'s friendly_name, status and date_updated."""
        values = (account.friendly_name, account.status, account.date_updated, account.sid)

        async def unit(conn: asyncpg.Connection) -> None:
            done = await conn.execute(numbered(ACCOUNT_UPDATE), *values)
            if done.split()[-1] == "0":
                raise NotFoundError(f"no account {account.sid}")

        await self.write(unit, idempotent=True)
        return account

    async def list_accounts(
        self, root_sid: str, friendly_name: str | None, status: str | None, page: int, size: int
    ) -> Page[Account]:
        """``root_sid`` and its descendants, oldest first (one read snapshot)."""
        count, page_sql, values, page_values = account_list_sql(
            root_sid, friendly_name, status, page, size
        )

        async def unit(conn: asyncpg.Connection) -> Page[Account]:
            total = await conn.fetchval(numbered(count), *values)
            found = await conn.fetch(numbered(page_sql), *page_values)
            return Page([rows.to_account(tuple(r)) for r in found], int(total))

        return await self.read_snapshot(unit)

    async def rotate_auth_token(self, sid: str, grace: float) -> Account:
        """A new AuthToken for ``sid``; the old one authenticates ``grace`` more seconds."""
        now, token = time.time(), new_auth_token()

        async def unit(conn: asyncpg.Connection) -> None:
            await conn.execute(numbered(PURGE_RETIRED_SQL), sid, now)
            if grace > 0:
                await conn.execute(numbered(RETIRE_SQL), now + grace, sid)
            done = await conn.execute(numbered(NEW_KEY_SQL), token, now, sid)
            if done.split()[-1] == "0":
                raise NotFoundError(f"no account {sid}")

        await self.write(unit)
        return await self.get_account(sid)

    async def retired_tokens(self, sid: str, now: float) -> list[str]:
        """``sid``'s rotated-out AuthTokens still in their grace period."""
        return [row[0] for row in await self.fetchall(RETIRED_VALID_SQL, (sid, now))]
