"""Column lists and row <-> dataclass conversions shared by the SQL stores."""

# ruff: noqa: S608  (SQL is assembled from constant column lists; values are bound)
from __future__ import annotations

import dataclasses
import json
from typing import Any

from rcmlrouter.store.records import (
    Account,
    Application,
    CallRecord,
    Capabilities,
    IdempotencyRecord,
    IncomingNumber,
    InventoryEntry,
    MessageRecord,
    MessageWire,
    Notification,
    Organization,
    OriginateRequest,
    OutboxEvent,
)

ORG_COLUMNS = "sid, domain, is_default, date_created"
ACCOUNT_COLUMNS = (
    "sid, parent_sid, organization_sid, friendly_name, email, auth_token, password_hash, "
    "status, date_created, date_updated"
)
APP_COLUMNS = (
    "sid, account_sid, friendly_name, voice_url, voice_method, sms_url, sms_method, "
    "refer_url, refer_method, date_created, date_updated"
)
NUMBER_FIELDS = (
    "sid",
    "account_sid",
    "organization_sid",
    "phone_number",
    "friendly_name",
    "is_sip",
    "number_type",
    "beta",
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "voice_fallback_method",
    "status_callback",
    "status_callback_method",
    "voice_caller_id_lookup",
    "voice_application_sid",
    "sms_url",
    "sms_method",
    "sms_fallback_url",
    "sms_fallback_method",
    "sms_application_sid",
    "refer_url",
    "refer_method",
    "refer_application_sid",
    "voice_capable",
    "sms_capable",
    "mms_capable",
    "fax_capable",
    "api_version",
    "date_created",
    "date_updated",
)
NUMBER_COLUMNS = ", ".join(NUMBER_FIELDS)
NUMBER_INSERT = (
    f"INSERT INTO incoming_phone_numbers ({NUMBER_COLUMNS}) "
    f"VALUES ({', '.join('?' for _ in NUMBER_FIELDS)})"
)
NUMBER_UPDATE = "UPDATE incoming_phone_numbers SET " + ", ".join(
    f"{name} = ?" for name in NUMBER_FIELDS[1:]
)
# A read joins the application names.
NUMBER_SELECT = (
    "SELECT "
    + ", ".join(f"n.{name}" for name in NUMBER_FIELDS)
    + ", va.friendly_name, sa.friendly_name, ra.friendly_name "
    "FROM incoming_phone_numbers n "
    "LEFT JOIN applications va ON va.sid = n.voice_application_sid "
    "LEFT JOIN applications sa ON sa.sid = n.sms_application_sid "
    "LEFT JOIN applications ra ON ra.sid = n.refer_application_sid"
)
INVENTORY_COLUMNS = (
    "phone_number, iso_country, number_type, region, rate_center, postal_code, lata, "
    "voice, sms, mms, fax, beta, available_at, assigned_sid"
)
CALL_COLUMNS = (
    "sid, account_sid, number_sid, from_number, to_number, direction, status, match_kind, "
    "start_time, answer_time, end_time, duration, sip_status, urls, used_fallback, error_code, "
    "next_sequence, status_callback, status_callback_method, callback_params, parent_call_sid, "
    "originate"
)
MESSAGE_COLUMNS = (
    "sid, account_sid, number_sid, from_number, to_number, body, direction, status, "
    "date_created, urls, used_fallback, error_code, sip_headers, dedupe_key, status_callback, "
    "status_callback_method, api_version, wire"
)
IDEMPOTENCY_COLUMNS = (
    "account_sid, idem_key, fingerprint, status, content_type, body, resource_sid, created_at"
)
NOTIFICATION_COLUMNS = (
    "sid, account_sid, call_sid, error_code, level, message, request_url, date_created"
)
OUTBOX_COLUMNS = (
    "id, call_sid, account_sid, sequence, url, method, params, attempts, next_attempt_at, "
    "created_at, last_error"
)


def to_organization(row: tuple[Any, ...]) -> Organization:
    return Organization(row[0], row[1], bool(row[2]), float(row[3]))


def to_account(row: tuple[Any, ...]) -> Account:
    sid, parent, org, name, email, token, password, status, created, updated = row
    return Account(
        sid, parent, org, name, email, token, password, status, float(created), float(updated)
    )


def to_application(row: tuple[Any, ...]) -> Application:
    return Application(*row)


_CAPABILITY_FIELDS = ("voice_capable", "sms_capable", "mms_capable", "fax_capable")


def to_number(row: tuple[Any, ...]) -> IncomingNumber:
    """A number from a row of NUMBER_FIELDS (+ the three application names, when joined)."""
    names = row[31:34] if len(row) >= 34 else (None, None, None)
    caps = Capabilities(row[24] == 1, row[25] == 1, row[26] == 1, row[27] == 1)
    args: list[Any] = [*row[0:5], row[5] == 1, row[6], row[7] == 1, *row[8:14], row[14] == 1]
    args += [*row[15:24], caps, row[28], row[29], row[30], *names]
    return IncomingNumber(*args)


def number_values(n: IncomingNumber) -> tuple[Any, ...]:
    caps = n.capabilities
    out: list[Any] = []
    for name in NUMBER_FIELDS:
        if name in _CAPABILITY_FIELDS:
            value: Any = getattr(caps, name.removesuffix("_capable"))
        else:
            value = getattr(n, name)
        out.append(int(value) if isinstance(value, bool) else value)
    return tuple(out)


def to_inventory(row: tuple[Any, ...]) -> InventoryEntry:
    return InventoryEntry(
        phone_number=row[0],
        iso_country=row[1],
        number_type=row[2],
        region=row[3],
        rate_center=row[4],
        postal_code=row[5],
        lata=row[6],
        capabilities=Capabilities(bool(row[7]), bool(row[8]), bool(row[9]), bool(row[10])),
        beta=bool(row[11]),
        available_at=float(row[12]),
        assigned_sid=row[13],
    )


def inventory_values(e: InventoryEntry) -> tuple[Any, ...]:
    c = e.capabilities
    return (
        e.phone_number,
        e.iso_country,
        e.number_type,
        e.region,
        e.rate_center,
        e.postal_code,
        e.lata,
        int(c.voice),
        int(c.sms),
        int(c.mms),
        int(c.fax),
        int(e.beta),
        e.available_at,
        e.assigned_sid,
    )


def to_call(row: tuple[Any, ...]) -> CallRecord:
    (
        sid,
        account,
        number,
        from_,
        to,
        direction,
        status,
        kind,
        start,
        answer,
        end,
        duration,
        sip_status,
        urls,
        fallback,
        error,
        next_sequence,
        status_callback,
        status_callback_method,
        callback_params,
        parent_call_sid,
        originate,
    ) = row
    return CallRecord(
        sid,
        account,
        number,
        from_,
        to,
        direction,
        status,
        kind,
        start,
        answer,
        end,
        duration,
        sip_status,
        list(json.loads(urls)),
        bool(fallback),
        error,
        next_sequence,
        status_callback,
        status_callback_method,
        dict(json.loads(callback_params)),
        parent_call_sid,
        OriginateRequest.from_json(originate) if originate else None,
    )


def call_values(c: CallRecord) -> tuple[Any, ...]:
    return (
        c.sid,
        c.account_sid,
        c.number_sid,
        c.from_,
        c.to,
        c.direction,
        c.status,
        c.match_kind,
        c.start_time,
        c.answer_time,
        c.end_time,
        c.duration,
        c.sip_status,
        json.dumps(list(c.urls)),
        int(c.used_fallback),
        c.error_code,
        c.next_sequence,
        c.status_callback,
        c.status_callback_method,
        json.dumps(c.callback_params, sort_keys=True),
        c.parent_call_sid,
        c.originate.to_json() if c.originate is not None else None,
    )


def to_message(row: tuple[Any, ...]) -> MessageRecord:
    args: list[Any] = [
        *row[0:9],
        list(json.loads(row[9])),
        row[10] == 1,
        row[11],
        dict(json.loads(row[12])),
        row[13],
        row[14],
        row[15],
        row[16],
        _to_wire(row[17]),
    ]
    return MessageRecord(*args)


def _to_wire(text: str | None) -> MessageWire | None:
    if text is None:
        return None
    value = json.loads(text)
    headers = tuple((str(name), str(content)) for name, content in value.get("headers", ()))
    return MessageWire(
        value["call_id"],
        int(value["cseq"]),
        value["from_tag"],
        value["from_uri"],
        value["branch"],
        headers,
    )


def _wire_text(wire: MessageWire | None) -> str | None:
    if wire is None:
        return None
    return json.dumps(
        {
            "call_id": wire.call_id,
            "cseq": wire.cseq,
            "from_tag": wire.from_tag,
            "from_uri": wire.from_uri,
            "branch": wire.branch,
            "headers": [list(header) for header in wire.headers],
        }
    )


def message_values(m: MessageRecord) -> tuple[Any, ...]:
    return (
        m.sid,
        m.account_sid,
        m.number_sid,
        m.from_,
        m.to,
        m.body,
        m.direction,
        m.status,
        m.date_created,
        json.dumps(list(m.urls)),
        int(m.used_fallback),
        m.error_code,
        json.dumps(m.sip_headers),
        m.dedupe_key,
        m.status_callback,
        m.status_callback_method,
        m.api_version,
        _wire_text(m.wire),
    )


def to_idempotency(row: tuple[Any, ...]) -> IdempotencyRecord:
    account, key, fingerprint, status, content_type, body, sid, created = row
    return IdempotencyRecord(
        account, key, fingerprint, int(status), content_type, body, sid, float(created)
    )


def idempotency_values(r: IdempotencyRecord) -> tuple[Any, ...]:
    return (
        r.account_sid,
        r.key,
        r.fingerprint,
        r.status,
        r.content_type,
        r.body,
        r.resource_sid,
        r.created_at,
    )


def to_notification(row: tuple[Any, ...]) -> Notification:
    return Notification(*row)


def to_outbox(row: tuple[Any, ...]) -> OutboxEvent:
    id_, call_sid, account, sequence, url, method, params, attempts, due, created, error = row
    return OutboxEvent(
        id_,
        call_sid,
        account,
        sequence,
        url,
        method,
        dict(json.loads(params)),
        attempts,
        due,
        created,
        error,
    )


def outbox_values(e: OutboxEvent) -> tuple[Any, ...]:
    return (
        e.call_sid,
        e.account_sid,
        e.sequence,
        e.url,
        e.method,
        json.dumps(e.params, sort_keys=True),
        e.attempts,
        e.next_attempt_at,
        e.created_at,
        e.last_error,
    )


def field_values(row: Account | Application | Notification) -> tuple[Any, ...]:
    """Every field in declaration order: the column order of the accounts, applications and
    notifications tables (``to_account``, ``to_application``, ``to_notification`` read it back).
    """
    return tuple(getattr(row, name) for name in _FIELD_NAMES[type(row)])


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (Account, Application, Notification)
}
