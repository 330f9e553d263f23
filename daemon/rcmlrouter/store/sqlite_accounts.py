# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Organizations and accounts on SQLite."""

from __future__ import annotations

import time
from typing import Any

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
from rcmlrouter.store.sqlite_records import RecordQueries

ACCOUNT_UPDATE = "UPDATE accounts SET friendly_name = ?, status = ?, date_updated = ? WHERE sid = ?"
# AuthToken rotation: the old token is kept until its grace ends; expired ones are dropped
RETIRE_SQL = (
    "INSERT INTO account_tokens (account_sid, auth_token, expires_at) "
    "SELECT sid, auth_token, CAST(? AS DOUBLE PRECISION) FROM accounts WHERE sid = ? "
    "ON CONFLICT (account_sid, auth_token) DO UPDATE SET expires_at = excluded.expires_at"
)
PURGE_RETIRED_SQL = "DELETE FROM account_tokens WHERE account_sid = ? AND expires_at <= ?"
NEW_KEY_SQL = "UPDATE accounts SET auth_token = ?, date_updated = ? WHERE sid = ?"
RETIRED_VALID_SQL = "SELECT auth_token FROM account_tokens WHERE account_sid = ? AND expires_at > ?"
_TREE = (
    "WITH RECURSIVE tree (sid, depth) AS ("
    " SELECT sid, 0 FROM accounts WHERE sid = ?"
    " UNION ALL SELECT a.sid, t.depth + 1 FROM accounts a"
    " JOIN tree t ON a.parent_sid = t.sid WHERE t.depth < 64) "
)


def account_list_sql(
    root_sid: str, friendly_name: str | None, status: str | None, page: int, size: int
) -> tuple[str, str, list[Any], list[Any]]:
    """(count SQL, page SQL, count values, page values): ``root_sid`` and its descendants,
    by FriendlyName and Status, oldest first. Both engines run it."""
    where, values = "sid IN (SELECT sid FROM tree)", [root_sid]
    for column, wanted in (("friendly_name", friendly_name), ("status", status)):
        if wanted is not None:
            where += f" AND {column} = ?"
            values.append(wanted)
    count = f"{_TREE}SELECT COUNT(*) FROM accounts WHERE {where}"
    page_sql = (
        f"{_TREE}SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE {where} "
        "ORDER BY date_created, sid LIMIT ? OFFSET ?"
    )
    return count, page_sql, values, [*values, size, page * size]


class AccountQueries(RecordQueries):
    """Organizations, accounts and the account tree."""

    # ---- organizations and accounts -------------------------------------------------------

    async def ensure_default_setup(self) -> tuple[Account, str | None]:
        """Create the default organization and administrator when missing."""
        now = time.time()
        async with self.transaction() as db:
            cursor = await db.execute("SELECT sid FROM organizations WHERE is_default = 1")
            row = await cursor.fetchone()
            if row is None:
                org_sid = new_sid("OR")
                await db.execute(
                    f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES (?, ?, 1, ?)",
                    (org_sid, DEFAULT_DOMAIN, now),
                )
            else:
                org_sid = row[0]
            cursor = await db.execute(
                f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE parent_sid IS NULL "
                "AND organization_sid = ? ORDER BY date_created, sid LIMIT 1",
                (org_sid,),
            )
            existing = await cursor.fetchone()
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
            await db.execute(
                f"INSERT INTO accounts ({rows.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows.field_values(admin),
            )
        return admin, token

    async def add_organization(self, domain: str) -> Organization:
        org = Organization(new_sid("OR"), domain.strip().lower(), False, time.time())
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES (?, ?, 0, ?)",
                (org.sid, org.domain, org.date_created),
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
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO accounts ({rows.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows.field_values(account),
            )
        return account

    async def update_account(self, account: Account) -> Account:
        """Store ``account``'s friendly_name, status and date_updated."""
        values = (account.friendly_name, account.status, account.date_updated, account.sid)
        async with self.transaction() as db:
            cursor = await db.execute(ACCOUNT_UPDATE, values)
            if cursor.rowcount == 0:
                raise NotFoundError(f"no account {account.sid}")
        return account

    async def list_accounts(
        self, root_sid: str, friendly_name: str | None, status: str | None, page: int, size: int
    ) -> Page[Account]:
        """``root_sid`` and its descendants, oldest first."""
        count, page_sql, values, page_values = account_list_sql(
            root_sid, friendly_name, status, page, size
        )
        total = await self.fetchone(count, values)
        found = await self.fetchall(page_sql, page_values)
        return Page([rows.to_account(r) for r in found], int(total[0]) if total else 0)

    async def rotate_auth_token(self, sid: str, grace: float) -> Account:
        """A new AuthToken for ``sid``; the old one authenticates ``grace`` more seconds."""
        now, token = time.time(), new_auth_token()
        async with self.transaction() as db:
            await db.execute(PURGE_RETIRED_SQL, (sid, now))
            if grace > 0:
                await db.execute(RETIRE_SQL, (now + grace, sid))
            cursor = await db.execute(NEW_KEY_SQL, (token, now, sid))
            if cursor.rowcount == 0:
                raise NotFoundError(f"no account {sid}")
        return await self.get_account(sid)

    async def retired_tokens(self, sid: str, now: float) -> list[str]:
        """``sid``'s rotated-out AuthTokens still in their grace period."""
        return [row[0] for row in await self.fetchall(RETIRED_VALID_SQL, (sid, now))]
