"""SMS/Messages list filters (To, From, DateSent, DateSent< and DateSent>), paging and shapes."""

from __future__ import annotations

import calendar
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

from api_harness import Api

from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import MessageRecord


def _at(day: str, hour: int = 12) -> float:
    return float(calendar.timegm(time.strptime(day, "%Y-%m-%d"))) + hour * 3600


def _message(api: Api, to: str, from_: str, day: str, **fields: object) -> MessageRecord:
    values: dict[str, object] = {
        "sid": new_sid("SM"),
        "account_sid": api.admin.sid,
        "number_sid": "PN" + "0" * 32,
        "from_": from_,
        "to": to,
        "body": f"hello {to}",
        "direction": "inbound",
        "status": "received",
        "date_created": _at(day),
        **fields,
    }
    return MessageRecord(**values)  # type: ignore[arg-type]


async def _seed(api: Api) -> list[MessageRecord]:
    messages = [
        _message(api, "+15551230001", "alice", "2024-03-01"),
        _message(api, "+15551230001", "bob", "2024-03-02"),
        _message(api, "+15551230002", "alice", "2024-03-02", status="failed", error_code=11200),
        _message(api, "mms:+12345678", "carol", "2024-03-05"),
    ]
    await api.store.record_messages(messages)
    return messages


async def _list(api: Api, **params: str) -> dict[str, object]:
    response = await api.client.get(api.url("SMS/Messages.json"), params=params, auth=api.auth)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _tos(body: dict[str, object]) -> list[str]:
    return [m["to"] for m in body["messages"]]  # type: ignore[attr-defined, index]


async def test_filters_by_to_and_from(api: Api) -> None:
    await _seed(api)
    assert sorted(_tos(await _list(api, To="+15551230001"))) == ["+15551230001"] * 2
    # an unencoded "+" inside a SIP number arrives as a space
    response = await api.client.get(
        api.url("SMS/Messages.json") + "?To=mms:+12345678", auth=api.auth
    )
    assert [m["to"] for m in response.json()["messages"]] == ["mms:+12345678"]
    assert sorted(_tos(await _list(api, From="alice"))) == ["+15551230001", "+15551230002"]
    both = await _list(api, To="+15551230001", From="bob")
    assert both["total"] == 1
    assert _tos(await _list(api, To="mms:+12345678")) == ["mms:+12345678"]


async def test_filters_by_date_sent(api: Api) -> None:
    await _seed(api)
    assert (await _list(api, DateSent="2024-03-02"))["total"] == 2
    assert (await _list(api, **{"DateSent<": "2024-03-02"}))["total"] == 3
    assert (await _list(api, **{"DateSent>": "2024-03-02"}))["total"] == 3
    window = await _list(api, **{"DateSent>": "2024-03-02", "DateSent<": "2024-03-04"})
    assert window["total"] == 2
    assert (await _list(api, DateSent="2024-03-03"))["total"] == 0
    # the raw Twilio spelling: DateSent<=2024-03-01
    raw = await api.client.get(
        api.url("SMS/Messages.json") + "?DateSent%3C=2024-03-01", auth=api.auth
    )
    assert raw.json()["total"] == 1


async def test_bad_date_is_400(api: Api) -> None:
    response = await api.client.get(
        api.url("SMS/Messages.json"), params={"DateSent": "03/02/2024"}, auth=api.auth
    )
    assert response.status_code == 400
    assert "DateSent" in response.json()["message"]


async def test_paging_keeps_filters_and_orders_newest_first(api: Api) -> None:
    await api.store.record_messages(
        [_message(api, "+15550000000", "x", f"2024-04-{day:02d}") for day in range(1, 8)]
    )
    first = await _list(api, To="+15550000000", PageSize="3")
    assert first["total"] == 7 and first["num_pages"] == 3
    next_uri = str(first["next_page_uri"])
    query = parse_qs(urlsplit(next_uri).query)
    assert query["To"] == ["+15550000000"] and query["Page"] == ["1"]
    dates = [m["date_sent"] for m in first["messages"]]  # type: ignore[attr-defined]
    assert dates[0].startswith("Sun, 07 Apr 2024")


async def test_fields_and_xml_shape(api: Api) -> None:
    seeded = await _seed(api)
    failed = seeded[2]
    one = await api.client.get(api.url(f"Messages/{failed.sid}.json"), auth=api.auth)
    body = one.json()
    assert body["direction"] == "inbound" and body["status"] == "failed"
    assert body["error_code"] == 11200 and body["body"] == "hello +15551230002"
    assert body["from"] == "alice" and body["phone_number_sid"] == failed.number_sid
    assert body["uri"].endswith(f"/SMS/Messages/{failed.sid}.json")
    xml = await api.client.get(api.url("SMS/Messages"), params={"From": "carol"}, auth=api.auth)
    root = ET.fromstring(xml.text)
    items = root.findall("./SMSMessages/SMSMessage")
    assert len(items) == 1 and items[0].findtext("To") == "mms:+12345678"
    assert root.find("./SMSMessages").get("total") == "1"  # type: ignore[union-attr]
