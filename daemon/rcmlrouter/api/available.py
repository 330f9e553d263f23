"""AvailablePhoneNumbers: search the number inventory (SPEC §1.6)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from rcmlrouter.api.auth import authorize
from rcmlrouter.api.context import store_of
from rcmlrouter.api.flavour import flavour_of
from rcmlrouter.api.form import MAX_PAGE_SIZE, Params, invalid
from rcmlrouter.api.number_params import national_format
from rcmlrouter.api.numbers import AREA_CODE, TYPE_SEGMENTS
from rcmlrouter.api.render import Collection, render, strip_format
from rcmlrouter.api.render_twilio import twilio_available_fields
from rcmlrouter.errors import ApiError
from rcmlrouter.store.filters import InventoryQuery
from rcmlrouter.store.records import InventoryEntry

KEYPAD = {
    letter: digit
    for digit, letters in {
        "2": "ABC",
        "3": "DEF",
        "4": "GHI",
        "5": "JKL",
        "6": "MNO",
        "7": "PQRS",
        "8": "TUV",
        "9": "WXYZ",
    }.items()
    for letter in letters
}
NANP = ("US", "CA")


def contains_pattern(raw: str) -> str:
    """``Contains`` as digits and ``*``: letters map to the keypad (ABC=2 … WXYZ=9)."""
    body = raw.removeprefix("+")
    out = []
    for ch in body.upper():
        if ch in "0123456789*":  # ASCII: "²".isdigit() is True too
            out.append(ch)
        elif ch in KEYPAD:
            out.append(KEYPAD[ch])
        else:
            raise invalid("Contains", f"{raw!r} may hold only digits, letters and *")
    if not out:
        raise invalid("Contains", "must not be empty")
    return "".join(out)


def inventory_query(params: Params, country: str, number_type: str) -> InventoryQuery:
    """The AvailablePhoneNumbers filters (SPEC §1.6); 21451 for a bad AreaCode."""
    area_code = params.text("AreaCode") or None
    if area_code is not None and (country not in NANP or not AREA_CODE.fullmatch(area_code)):
        raise invalid("AreaCode", f"{area_code!r} is not a US/CA area code", 21451)
    contains = params.text("Contains")
    beta = params.boolean("Beta")
    return InventoryQuery(
        iso_country=country,
        number_type=number_type,
        area_code=area_code,
        contains=contains_pattern(contains) if contains else None,
        region=params.text("InRegion") or None,
        postal_code=params.text("InPostalCode") or None,
        voice=params.boolean("VoiceEnabled"),
        sms=params.boolean("SmsEnabled"),
        mms=params.boolean("MmsEnabled"),
        fax=params.boolean("FaxEnabled"),
        include_beta=True if beta is None else beta,
        limit=params.integer("PageSize", 50, 1, MAX_PAGE_SIZE),
    )


def available_fields(entry: InventoryEntry) -> dict[str, Any]:
    caps = entry.capabilities
    return {
        "friendly_name": national_format(entry.phone_number),
        "phone_number": entry.phone_number,
        "lata": entry.lata,
        "rate_center": entry.rate_center,
        "region": entry.region,
        "postal_code": entry.postal_code,
        "iso_country": entry.iso_country,
        "capabilities": {"voice": caps.voice, "sms": caps.sms, "mms": caps.mms, "fax": caps.fax},
        "beta": entry.beta,
    }


async def handle_available(request: web.Request) -> web.Response:
    """GET ``AvailablePhoneNumbers/{IsoCountry}/{Local|TollFree|Mobile}``."""
    await authorize(request)
    kind = strip_format(request.match_info["kind"])
    number_type = TYPE_SEGMENTS.get(kind)
    if number_type is None:
        raise ApiError(404, 20404, f"unknown number type {kind!r}: use Local, TollFree or Mobile")
    country = request.match_info["country"].upper()
    if len(country) != 2 or not country.isalpha():
        raise invalid("IsoCountry", f"{country!r} is not a 2-letter country code")
    query = inventory_query(Params.from_query(request), country, number_type)
    entries = await store_of(request).list_inventory(query, time.time())
    uri = request.path_qs
    fields = twilio_available_fields if flavour_of(request).is_twilio else available_fields
    items = [fields(entry) for entry in entries]
    return render(
        request,
        Collection(
            "AvailablePhoneNumbers",
            "AvailablePhoneNumber",
            "available_phone_numbers",
            {"uri": uri},
            items,
        ),
    )
