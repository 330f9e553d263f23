"""The row types the store traffics in: organizations, accounts, applications, numbers and the
inventory, call and message records, notifications, recordings, outbox events, idempotency keys.

Every timestamp in the store is a ``float``: POSIX seconds, UTC (``time.time()``). The API renders
them as RFC 2822 GMT strings. Sids are text (two-letter prefix + 32 lowercase hex). Booleans are
Python ``bool`` here and integers 0/1 in SQL.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

NumberType = Literal["local", "toll-free", "mobile", "sip"]


NUMBER_TYPES: tuple[str, ...] = ("local", "toll-free", "mobile", "sip")


PrunedKind = Literal["calls", "messages", "notifications", "streams"]  # retention deletes by SQL


DEFAULT_DOMAIN = "default.rcmlrouter.local"


API_VERSION = "2012-04-24"


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
class OriginateRequest:
    """What ``POST Accounts/{AC}/Calls`` asked for: everything needed to dial the call, kept
    with its record (``calls.originate``, JSON) while it is ``queued``, so a restart or another
    node dials it (``calls/originate.py``). Cleared when the INVITE is about to leave."""

    to: str  # an E.164 number (through a trunk) or a sip:/sips: URI
    from_: str
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    application_sid: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    timeout: int = 60  # s of ringing before no-answer
    time_limit: int = 14_400  # s an answered call may last
    send_digits: str = ""
    record: bool = False
    recording_track: str = "both"  # inbound (the called party), outbound (ours) or both
    recording_channels: str = "mono"  # or dual: inbound and outbound on two channels
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    sip_auth_username: str = ""
    sip_auth_password: str = ""
    api_version: str = API_VERSION
    trunk: str = ""  # the [[trunks]] name a number goes through ("": the default trunk)

    def to_json(self) -> str:
        values = {name: getattr(self, name) for name in _ORIGINATE_FIELDS}
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OriginateRequest:
        values = json.loads(text)
        values["status_callback_events"] = tuple(values.get("status_callback_events", ()))
        return cls(**{k: v for k, v in values.items() if k in _ORIGINATE_FIELDS})


_ORIGINATE_FIELDS = frozenset(f.name for f in dataclasses.fields(OriginateRequest))


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
    originate: OriginateRequest | None = None  # an API call still queued (not dialled yet)


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
