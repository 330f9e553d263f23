# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Organizations, accounts, the account tree and AuthToken rotation, for both engines."""

from __future__ import annotations

import time
from typing import Any

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.filters import Page
from rcmlrouter.store.ids import hash_password, new_auth_token, new_sid
from rcmlrouter.store.records import DEFAULT_DOMAIN, Account, Organization
from rcmlrouter.store.sql import SqlStore, Unit, change, counted_page, fetch_one

ORG_INSERT = f"INSERT INTO organizations ({rows.ORG_COLUMNS}) VALUES (?, ?, ?, ?)"
ACCOUNT_INSERT = f"INSERT INTO accounts ({rows.ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
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
_LINEAGE = (
    "WITH RECURSIVE lineage (sid, parent_sid, depth) AS ("
    " SELECT sid, parent_sid, 0 FROM accounts WHERE sid = ?"
    " UNION ALL SELECT a.sid, a.parent_sid, l.depth + 1 FROM accounts a"
    " JOIN lineage l ON a.sid = l.parent_sid WHERE l.depth < 64)"
    " SELECT sid FROM lineage ORDER BY depth"
)


def account_list_sql(
    root_sid: str, friendly_name: str | None, status: str | None
) -> tuple[str, str, list[Any]]:
    """(count SQL, page SQL, values): ``root_sid`` and its descendants, by FriendlyName and
    Status, oldest first; the page SQL takes LIMIT and OFFSET after the values."""
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
    return count, page_sql, values


def _administrator(org_sid: str, now: float) -> tuple[Account, str]:
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
    return admin, token


class AccountQueries(SqlStore):
    """Organizations, accounts and the account tree."""

    async def ensure_default_setup(self) -> tuple[Account, str | None]:
        """Create the default organization and administrator when missing (processes starting
        together on one database serialise on the dialect's setup lock)."""
        lock = self.dialect.setup_lock

        def unit() -> Unit[tuple[Account, str | None]]:
            if lock is not None:
                yield from fetch_one(lock)
            now = time.time()
            row = yield from fetch_one("SELECT sid FROM organizations WHERE is_default = 1")
            org_sid = row[0] if row is not None else new_sid("OR")
            if row is None:
                yield from change(ORG_INSERT, (org_sid, DEFAULT_DOMAIN, 1, now))
            existing = yield from fetch_one(
                f"SELECT {rows.ACCOUNT_COLUMNS} FROM accounts WHERE parent_sid IS NULL "
                "AND organization_sid = ? ORDER BY date_created, sid LIMIT 1",
                (org_sid,),
            )
            if existing is not None:
                return rows.to_account(existing), None
            admin, token = _administrator(org_sid, now)
            yield from change(ACCOUNT_INSERT, rows.field_values(admin))
            return admin, token

        return await self.write_unit(unit)

    async def add_organization(self, domain: str) -> Organization:
        org = Organization(new_sid("OR"), domain.strip().lower(), False, time.time())
        values = (org.sid, org.domain, 0, org.date_created)
        await self.write_unit(lambda: change(ORG_INSERT, values))
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
        return [row[0] for row in await self.fetchall(_LINEAGE, (sid,))]

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
        values = rows.field_values(account)
        await self.write_unit(lambda: change(ACCOUNT_INSERT, values))
        return account

    async def update_account(self, account: Account) -> Account:
        """Store ``account``'s friendly_name, status and date_updated."""
        values = (account.friendly_name, account.status, account.date_updated, account.sid)

        def unit() -> Unit[None]:
            if (yield from change(ACCOUNT_UPDATE, values)) == 0:
                raise NotFoundError(f"no account {account.sid}")

        await self.write_unit(unit, idempotent=True)
        return account

    async def list_accounts(
        self, root_sid: str, friendly_name: str | None, status: str | None, page: int, size: int
    ) -> Page[Account]:
        """``root_sid`` and its descendants, oldest first (one read snapshot)."""
        count, page_sql, values = account_list_sql(root_sid, friendly_name, status)
        found, total = await self.read_unit(
            lambda: counted_page(count, values, page_sql, page, size)
        )
        return Page([rows.to_account(r) for r in found], total)

    async def rotate_auth_token(self, sid: str, grace: float) -> Account:
        """A new AuthToken for ``sid``; the old one authenticates ``grace`` more seconds."""
        now, token = time.time(), new_auth_token()

        def unit() -> Unit[None]:
            yield from change(PURGE_RETIRED_SQL, (sid, now))
            if grace > 0:
                yield from change(RETIRE_SQL, (now + grace, sid))
            if (yield from change(NEW_KEY_SQL, (token, now, sid))) == 0:
                raise NotFoundError(f"no account {sid}")

        await self.write_unit(unit)
        return await self.get_account(sid)

    async def retired_tokens(self, sid: str, now: float) -> list[str]:
        """``sid``'s rotated-out AuthTokens still in their grace period."""
        return [row[0] for row in await self.fetchall(RETIRED_VALID_SQL, (sid, now))]
