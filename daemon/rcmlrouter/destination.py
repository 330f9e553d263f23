"""Which provisioned number a SIP request is for (SPEC §2): organizations, then the snapshot.

Shared by calls (INVITE: To or Request-URI user) and messages (MESSAGE: Request-URI user), so
both route exactly alike: the destination organization is the first of the given hosts that is a
known organization domain (else the default one), the caller organization comes from the From
host, and :meth:`~rcmlrouter.routing.table.RoutingSnapshot.resolve` picks exact → regex →
catch-all. Only the number row and its account's token are read (cached) from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rcmlrouter.errors import AccountSuspendedError, RouteNotFoundError
from rcmlrouter.routing.table import RouteMatch
from rcmlrouter.services import Services
from rcmlrouter.store.records import IncomingNumber, Organization


@dataclass(frozen=True, slots=True)
class Destination:
    """A routed request: the organization it was for and the number it matched (if any)."""

    organization: Organization
    match: RouteMatch | None


@dataclass(frozen=True, slots=True)
class RoutedNumber:
    """The matched number's row and the signing key of its account."""

    match: RouteMatch
    number: IncomingNumber
    auth_token: str


async def find_destination(
    services: Services, dialed: str, hosts: Sequence[str | None], caller_host: str | None
) -> Destination:
    """Route the normalised ``dialed`` string; raise ``RouteNotFoundError`` when there is no
    organization at all. ``Destination.match`` is None when no number matches."""
    directory = services.directory
    dest = await directory.organization_for(*hosts) or directory.default_organization
    if dest is None:
        raise RouteNotFoundError("no organization is configured")
    caller = await directory.organization_for(caller_host)
    match = services.snapshot.resolve(
        dialed,
        dest.sid,
        caller.sid if caller else None,
        services.config.routing.default_region,
    )
    return Destination(dest, match)


async def routed_number(services: Services, match: RouteMatch) -> RoutedNumber:
    """The row of the matched number and its account's auth token (cached reads).

    A number of a suspended (or closing) account is refused: ``AccountSuspendedError``, 403.
    """
    number = await services.directory.number(match.sid)
    account = await services.directory.account(number.account_sid)
    if account.status != "active":
        raise AccountSuspendedError(f"account {account.sid} is {account.status}")
    return RoutedNumber(match, number, account.auth_token)
