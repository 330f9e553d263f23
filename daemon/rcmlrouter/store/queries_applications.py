# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
"""Applications, for both engines; the numbers using one hear about its changes."""

from __future__ import annotations

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store import rows
from rcmlrouter.store.filters import Page
from rcmlrouter.store.queries_numbers import NumberQueries
from rcmlrouter.store.records import Application
from rcmlrouter.store.sql import Unit, change, counted_page, fetch

APP_INSERT = f"INSERT INTO applications ({rows.APP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
APP_UPDATE = (
    "UPDATE applications SET account_sid=?, friendly_name=?, voice_url=?, voice_method=?, "
    "sms_url=?, sms_method=?, refer_url=?, refer_method=?, date_created=?, date_updated=? "
    "WHERE sid = ?"
)
APP_USERS = (  # one index each
    "SELECT sid FROM incoming_phone_numbers WHERE voice_application_sid = ? "
    "UNION SELECT sid FROM incoming_phone_numbers WHERE sms_application_sid = ? "
    "UNION SELECT sid FROM incoming_phone_numbers WHERE refer_application_sid = ?"
)


def _users(app_sid: str) -> Unit[list[str]]:
    """Sids of the numbers using application ``app_sid``."""
    return [row[0] for row in (yield from fetch(APP_USERS, (app_sid, app_sid, app_sid)))]


class ApplicationQueries(NumberQueries):
    """The ``applications`` table."""

    async def create_application(self, app: Application) -> Application:
        values = rows.field_values(app)
        await self.write_unit(lambda: change(APP_INSERT, values))
        return app

    async def get_application(self, sid: str) -> Application:
        row = await self.fetchone(
            f"SELECT {rows.APP_COLUMNS} FROM applications WHERE sid = ?", (sid,)
        )
        if row is None:
            raise NotFoundError(f"no application {sid}")
        return rows.to_application(row)

    async def update_application(self, app: Application) -> Application:
        """Store ``app``; listeners hear about the numbers using it (new names)."""
        values = rows.field_values(app)

        def unit() -> Unit[list[str]]:
            if (yield from change(APP_UPDATE, (*values[1:], app.sid))) == 0:
                raise NotFoundError(f"no application {app.sid}")
            return (yield from _users(app.sid))

        for number_sid in await self.write_unit(unit, idempotent=True):
            await self._notify_upsert(number_sid)
        return app

    async def delete_application(self, sid: str) -> None:
        """Delete; numbers using it lose the reference (and listeners hear about them)."""

        def unit() -> Unit[list[str]]:
            users = yield from _users(sid)
            if (yield from change("DELETE FROM applications WHERE sid = ?", (sid,))) == 0:
                raise NotFoundError(f"no application {sid}")
            return users

        for number_sid in await self.write_unit(unit):
            await self._notify_upsert(number_sid)

    async def list_applications(
        self, account_sid: str, page: int, page_size: int
    ) -> Page[Application]:
        """By friendly name (one read snapshot)."""
        count_sql = "SELECT COUNT(*) FROM applications WHERE account_sid = ?"
        page_sql = (
            f"SELECT {rows.APP_COLUMNS} FROM applications WHERE account_sid = ? "
            "ORDER BY friendly_name, sid LIMIT ? OFFSET ?"
        )
        found, total = await self.read_unit(
            lambda: counted_page(count_sql, (account_sid,), page_sql, page, page_size)
        )
        return Page([rows.to_application(r) for r in found], total)
