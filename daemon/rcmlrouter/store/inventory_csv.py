"""Read the number-inventory CSV (SPEC §7).

Header: ``phone_number,iso_country,type,region,rate_center,postal_code,lata,voice,sms,mms,fax,
beta``.
Every bad row is reported at once in one :class:`~rcmlrouter.errors.ConfigError`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import phonenumbers

from rcmlrouter.errors import ConfigError
from rcmlrouter.store.records import Capabilities, InventoryEntry

HEADER = (
    "phone_number",
    "iso_country",
    "type",
    "region",
    "rate_center",
    "postal_code",
    "lata",
    "voice",
    "sms",
    "mms",
    "fax",
    "beta",
)
INVENTORY_TYPES = ("local", "toll-free", "mobile")
_BOOLS = {"true": True, "false": False}


def normalise_e164(raw: str, iso_country: str | None = None) -> str:
    """The E.164 form of ``raw``; ValueError when it is not a valid number."""
    try:
        parsed = phonenumbers.parse(raw.strip(), (iso_country or "US").upper())
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def parse_inventory_row(row: dict[str, str]) -> InventoryEntry:
    """One CSV row to an entry; ValueError listing the row's problems."""
    problems: list[str] = []
    country = row["iso_country"].strip().upper()
    if len(country) != 2 or not country.isalpha():
        problems.append(f"iso_country {row['iso_country']!r} is not a 2-letter code")
    number_type = row["type"].strip().lower()
    if number_type not in INVENTORY_TYPES:
        problems.append(f"type {row['type']!r} is not one of {', '.join(INVENTORY_TYPES)}")
    flags: dict[str, bool] = {}
    for name in ("voice", "sms", "mms", "fax", "beta"):
        value = row[name].strip().lower()
        if value not in _BOOLS:
            problems.append(f"{name} {row[name]!r} is not true/false")
        flags[name] = _BOOLS.get(value, False)
    phone = ""
    try:
        phone = normalise_e164(row["phone_number"], country if len(country) == 2 else None)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return InventoryEntry(
        phone_number=phone,
        iso_country=country,
        number_type=number_type,
        region=row["region"].strip() or None,
        rate_center=row["rate_center"].strip() or None,
        postal_code=row["postal_code"].strip() or None,
        lata=row["lata"].strip() or None,
        capabilities=Capabilities(flags["voice"], flags["sms"], flags["mms"], flags["fax"]),
        beta=flags["beta"],
    )


def read_inventory_csv(path: str | os.PathLike[str]) -> list[InventoryEntry]:
    """Every entry of the CSV at ``path``; ConfigError listing every bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    reader = csv.DictReader(text.splitlines())
    header = tuple(name.strip() for name in reader.fieldnames or ())
    if header != HEADER:
        raise ConfigError([f"{path}: line 1: header must be {','.join(HEADER)}"])
    entries: list[InventoryEntry] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        if None in row or any(value is None for value in row.values()):
            problems.append(f"{path}: line {line}: expected {len(HEADER)} columns")
            continue
        try:
            entry = parse_inventory_row({k.strip(): v for k, v in row.items()})
        except ValueError as exc:
            problems.append(f"{path}: line {line}: {exc}")
            continue
        if entry.phone_number in seen:
            problems.append(
                f"{path}: line {line}: {entry.phone_number} repeats line {seen[entry.phone_number]}"
            )
            continue
        seen[entry.phone_number] = line
        entries.append(entry)
    if problems:
        raise ConfigError(problems)
    return entries
