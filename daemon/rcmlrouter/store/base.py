"""The ``Store`` protocol and the row types it traffics in.

Every timestamp in the store is a ``float``: POSIX seconds, UTC (``time.time()``). The API renders
them as RFC 2822 GMT strings. Sids are text (two-letter prefix + 32 lowercase hex). Booleans are
Python ``bool`` here and integers 0/1 in SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

NumberType = Literal["local", "toll-free", "mobile", "sip"]
NUMBER_TYPES: tuple[str, ...] = ("local", "toll-free", "mobile", "sip")
PrunedKind = Literal["calls", "messages", "notifications"]  # records retention deletes by SQL
DEFAULT_DOMAIN = "default.rcmlrouter.local"
API_VERSION = "2012-04-24"


def new_sid(prefix: str) -> str:
    """A fresh sid: ``prefix`` + 32 lowercase hex characters."""
    return prefix + secrets.token_hex(16)


def new_auth_token() -> str:
    """A fresh AuthToken: 32 lowercase hex characters."""
    return secrets.token_hex(16)


_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32


def hash_password(password: str) -> str:
    """Self-describing scrypt hash: ``scrypt$n$r$p$salt_hex$hash_hex``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches a hash made by :func:`hash_password`."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest_hex)
        digest = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True, slots=True)
class Organization:
    sid: str
    domain: str
    is_default: bool
    date_created: float


@dataclass(frozen=True, slots=True)
class Account:
    sid: str
    parent_sid: str | None
    organization_sid: str
    friendly_name: str
    email: str | None
    auth_token: str
    password_hash: str | None
    status: str
    date_created: float
    date_updated: float


@dataclass(frozen=True, slots=True)
class Application:
    sid: str
    account_sid: str
    friendly_name: str
    voice_url: str | None
    voice_method: str
    sms_url: str | None
    sms_method: str
    refer_url: str | None
    refer_method: str
    date_created: float
    date_updated: float


@dataclass(frozen=True, slots=True)
class Capabilities:
    voice: bool = True
    sms: bool = True
    mms: bool = False
    fax: bool = False


@dataclass(frozen=True, slots=True)
class IncomingNumber:
    """A provisioned number. ``*_application_name`` are filled on reads (joined), else None."""

    sid: str
    account_sid: str
    organization_sid: str
    phone_number: str
    friendly_name: str
    is_sip: bool
    number_type: str
    beta: bool
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    voice_caller_id_lookup: bool = False
    voice_application_sid: str | None = None
    sms_url: str | None = None
    sms_method: str = "POST"
    sms_fallback_url: str | None = None
    sms_fallback_method: str = "POST"
    sms_application_sid: str | None = None
    refer_url: str | None = None
    refer_method: str = "POST"
    refer_application_sid: str | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    api_version: str = API_VERSION
    date_created: float = 0.0
    date_updated: float = 0.0
    voice_application_name: str | None = None
    sms_application_name: str | None = None
    refer_application_name: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    phone_number: str
    iso_country: str
    number_type: str
    region: str | None = None
    rate_center: str | None = None
    postal_code: str | None = None
    lata: str | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    beta: bool = False
    available_at: float = 0.0
    assigned_sid: str | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    sid: str
    account_sid: str
    number_sid: str | None
    from_: str
    to: str
    direction: str
    status: str
    match_kind: str | None
    start_time: float
    answer_time: float | None
    end_time: float | None
    duration: float | None
    sip_status: int | None
    urls: list[str] = field(default_factory=list)
    used_fallback: bool = False
    error_code: int | None = None
    # The StatusCallback the call reports to and the SequenceNumber of its next event: written
    # in the same transaction as the call's outbox events, so a restart knows what is owed.
    next_sequence: int = 0
    status_callback: str | None = None
    status_callback_method: str = "POST"
    callback_params: dict[str, str] = field(default_factory=dict)
    parent_call_sid: str | None = None  # the dialing call of an outbound-dial leg


@dataclass(frozen=True, slots=True)
class MessageWire:
    """What makes an outbound MESSAGE the same request when it is sent again: its Call-ID,
    CSeq, From tag and URI, Via branch and extra headers (a digest answer). Stored before the
    request leaves, so a message resent after a crash is a retransmission, not a second message
    (``messaging/queued.py``)."""

    call_id: str
    cseq: int
    from_tag: str
    from_uri: str
    branch: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message received or sent (SPEC §5); ``status`` e.g. received / failed, and for one
    the API queued (direction ``outbound-api``) queued → sending → sent / failed."""

    sid: str
    account_sid: str
    number_sid: str | None
    from_: str
    to: str
    body: str
    direction: str
    status: str
    date_created: float
    urls: list[str] = field(default_factory=list)
    used_fallback: bool = False
    error_code: int | None = None
    # Inbound: the request's X- headers (webhook SipHeader_ parameters, also after a restart)
    # and its "Call-ID CSeq" (a re-sent MESSAGE is not processed twice, across a restart too).
    sip_headers: dict[str, str] = field(default_factory=dict)
    dedupe_key: str | None = None
    # Sent through the API: where its status goes, the ApiVersion of its base, and once it is
    # being sent the identity of its MESSAGE request (resent as is after a crash).
    status_callback: str | None = None
    status_callback_method: str = "POST"
    api_version: str | None = None
    wire: MessageWire | None = None


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
class LiveCall:
    """A call without an end time and the node that runs it (``None`` on SQLite: the one
    process)."""

    record: CallRecord
    node: str | None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A cluster node's heartbeat row (PostgreSQL; SQLite has none)."""

    node_id: str
    started_at: float
    heartbeat_at: float
    sip: str
    api: str


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first answer to a request made with an ``Idempotency-Key`` (``api/idempotency.py``):
    unique per account and key; ``fingerprint`` says which request it answered."""

    account_sid: str
    key: str
    fingerprint: str
    status: int
    content_type: str
    body: str
    resource_sid: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Notification:
    sid: str
    account_sid: str
    call_sid: str | None
    error_code: int
    level: str
    message: str
    request_url: str | None
    date_created: float


@dataclass(frozen=True, slots=True)
class Recording:
    """A ``<Record>``: the audio is ``{data dir}/recordings/{account_sid}/{sid}.wav``."""

    sid: str
    account_sid: str
    call_sid: str | None
    duration: float  # seconds
    date_created: float
    status: str = "completed"
    source: str = "RecordVerb"
    channels: int = 1


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int | None
    call_sid: str
    account_sid: str
    sequence: int
    url: str
    method: str
    params: dict[str, str]
    attempts: int = 0
    next_attempt_at: float = 0.0
    created_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class NumberChange:
    action: Literal["upsert", "delete"]
    sid: str
    number: IncomingNumber | None


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


ChangeListener = Callable[[NumberChange], None]


class Store(Protocol):
    """Everything the daemon and the API need from persistence."""

    async def close(self) -> None: ...

    # organizations & accounts
    async def ensure_default_setup(self) -> tuple[Account, str | None]: ...
    async def add_organization(self, domain: str) -> Organization: ...
    async def list_organizations(self) -> list[Organization]: ...
    async def get_account(self, sid: str) -> Account: ...
    async def get_account_by_email(self, email: str) -> Account: ...
    async def account_lineage(self, sid: str) -> list[str]: ...
    async def create_account(
        self, parent: Account, friendly_name: str, email: str | None, password: str | None
    ) -> Account: ...
    async def update_account(self, account: Account) -> Account: ...
    async def rotate_auth_token(self, sid: str, grace: float) -> Account: ...
    async def retired_tokens(self, sid: str, now: float) -> list[str]: ...
    async def list_accounts(
        self, root_sid: str, friendly_name: str | None, status: str | None, page: int, size: int
    ) -> Page[Account]: ...

    # applications
    async def create_application(self, app: Application) -> Application: ...
    async def get_application(self, sid: str) -> Application: ...
    async def update_application(self, app: Application) -> Application: ...
    async def delete_application(self, sid: str) -> None: ...
    async def list_applications(
        self, account_sid: str, page: int, page_size: int
    ) -> Page[Application]: ...

    # numbers
    async def create_number(
        self, number: IncomingNumber, *, from_inventory: bool
    ) -> IncomingNumber: ...
    async def buy_number(
        self, phone_number: str, build: Callable[[InventoryEntry], IncomingNumber]
    ) -> IncomingNumber: ...
    async def bulk_insert_numbers(self, numbers: Sequence[IncomingNumber]) -> int: ...
    async def get_number(self, sid: str) -> IncomingNumber: ...
    async def account_number(
        self, account_sid: str, phone_number: str
    ) -> IncomingNumber | None: ...
    async def update_number(self, number: IncomingNumber) -> IncomingNumber: ...
    async def delete_number(self, sid: str, recycle_after: float) -> None: ...
    async def list_numbers(
        self, query: NumberQuery, page: int, page_size: int
    ) -> Page[IncomingNumber]: ...
    async def list_numbers_from(
        self, query: NumberQuery, cursor: NumberCursor | None, limit: int
    ) -> list[IncomingNumber]: ...
    def iter_route_rows(self) -> AsyncIterator[tuple[str, str, str, bool, float]]: ...
    def add_change_listener(self, callback: ChangeListener) -> None: ...

    # inventory
    async def import_inventory(self, entries: Iterable[InventoryEntry]) -> int: ...
    async def get_inventory_entry(self, phone_number: str) -> InventoryEntry: ...
    async def list_inventory(self, query: InventoryQuery, now: float) -> list[InventoryEntry]: ...
    async def pick_available_number(self, query: InventoryQuery, now: float) -> InventoryEntry: ...

    # calls, notifications
    async def record_calls(self, records: Sequence[CallRecord]) -> None: ...
    async def unfinished_calls(self) -> list[CallRecord]: ...
    async def get_call(self, sid: str) -> CallRecord: ...
    async def list_calls(self, query: CallQuery, page: int, page_size: int) -> Page[CallRecord]: ...
    async def recent_calls(
        self, query: CallQuery, before: RecordCursor | None, limit: int
    ) -> list[CallRecord]: ...
    async def call_search_floor(
        self, query: CallQuery, before: RecordCursor | None, depth: int
    ) -> float | None: ...
    async def live_calls(self, account_sids: Sequence[str]) -> list[LiveCall]: ...
    async def call_notifications(self, call_sid: str, limit: int) -> list[Notification]: ...
    async def call_callbacks(self, call_sid: str) -> list[OutboxEvent]: ...
    async def list_nodes(self) -> list[NodeInfo]: ...
    async def record_messages(self, records: Sequence[MessageRecord]) -> None: ...
    async def get_message(self, sid: str) -> MessageRecord: ...
    async def list_messages(
        self, query: MessageQuery, page: int, page_size: int
    ) -> Page[MessageRecord]: ...
    async def recent_messages(
        self, query: MessageQuery, before: RecordCursor | None, limit: int
    ) -> list[MessageRecord]: ...
    async def message_search_floor(
        self, query: MessageQuery, before: RecordCursor | None, depth: int
    ) -> float | None: ...
    async def accepted_messages(self) -> list[MessageRecord]: ...
    async def pending_outbound_messages(self) -> list[MessageRecord]: ...
    async def create_message(
        self, message: MessageRecord, idempotency: IdempotencyRecord | None, ttl: float
    ) -> IdempotencyRecord | None: ...
    async def get_idempotency_record(
        self, account_sid: str, key: str, since: float
    ) -> IdempotencyRecord | None: ...
    async def prune_idempotency_records(self, before: float) -> int: ...
    async def recent_message_keys(self, since: float) -> list[tuple[str, str]]: ...
    async def add_notifications(self, items: Sequence[Notification]) -> None: ...
    async def get_notification(self, sid: str) -> Notification: ...
    async def list_notifications(
        self, account_sid: str, page: int, page_size: int
    ) -> Page[Notification]: ...

    # recordings
    async def add_recording(self, recording: Recording) -> None: ...
    async def get_recording(self, sid: str) -> Recording: ...
    async def list_recordings(
        self, account_sid: str, call_sid: str | None, page: int, page_size: int
    ) -> Page[Recording]: ...

    # retention ([records] max_age; store/queries_retention.py)
    async def prune_records(
        self, kind: PrunedKind, cutoff: float, limit: int, *, stale_before: float = 0.0
    ) -> int | None: ...
    async def old_recordings(self, cutoff: float, limit: int) -> list[tuple[str, str]]: ...
    async def delete_recordings(self, sids: Sequence[str], cutoff: float) -> int | None: ...

    # callback outbox
    async def write_journal(
        self,
        calls: Sequence[CallRecord],
        messages: Sequence[MessageRecord],
        events: Sequence[OutboxEvent],
    ) -> list[int]: ...
    async def enqueue_callbacks(self, events: Sequence[OutboxEvent]) -> list[int]: ...
    async def pending_callbacks(self, after_id: int, limit: int) -> list[OutboxEvent]: ...
    async def mark_callbacks_delivered(self, ids: Sequence[int]) -> None: ...
    async def pending_callback_count(self) -> int: ...
