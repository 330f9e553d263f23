"""What a list query asks for (filters, cursors) and what it returns (a page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters for listing an account's messages; ``sent_from``/``sent_before`` bound
    ``date_created`` (from inclusive, before exclusive)."""

    account_sid: str
    to: str | None = None
    from_: str | None = None
    sent_from: float | None = None
    sent_before: float | None = None


@dataclass(frozen=True, slots=True)
class CallQuery:
    """Filters for listing an account's calls; ``started_from``/``started_before`` bound
    ``start_time`` (from inclusive, before exclusive)."""

    account_sid: str
    to: str | None = None
    from_: str | None = None
    started_from: float | None = None
    started_before: float | None = None


@dataclass(frozen=True, slots=True)
class RecordCursor:
    """A position in a newest-first record list: the rows older than (``time``, ``sid``)."""

    time: float
    sid: str


@dataclass(frozen=True, slots=True)
class NumberQuery:
    """Filters for listing an account's numbers (SPEC §1.4)."""

    account_sid: str
    phone_number: str | None = None
    friendly_name: str | None = None
    include_beta: bool = True
    number_type: str | None = None


@dataclass(frozen=True, slots=True)
class NumberCursor:
    """A position in a number list (ordered by phone_number, then sid): the rows after it, or
    with ``before`` the rows before it. Stable under inserts, unlike an offset."""

    phone_number: str
    sid: str
    before: bool = False


@dataclass(frozen=True, slots=True)
class InventoryQuery:
    """Filters for available inventory numbers (SPEC §1.6). ``contains`` is digits and ``*``."""

    iso_country: str | None
    number_type: str | None
    area_code: str | None = None
    contains: str | None = None
    region: str | None = None
    postal_code: str | None = None
    voice: bool | None = None
    sms: bool | None = None
    mms: bool | None = None
    fax: bool | None = None
    include_beta: bool = True
    limit: int = 50


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
