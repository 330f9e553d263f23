"""Applications, AvailablePhoneNumbers, Calls and Notifications over real HTTP."""

from __future__ import annotations

import time

import defusedxml.ElementTree as SafeET
import pytest
from api_harness import Api

from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord, Notification

APP_KEYS = [
    "sid", "friendly_name", "voice_url", "voice_method", "sms_url", "sms_method", "refer_url",
    "refer_method", "date_created", "date_updated", "uri",
]  # fmt: skip


async def test_application_crud_and_number_link(api: Api) -> None:
    apps = api.url("Applications.json")
    created = await api.client.post(
        apps,
        data={"FriendlyName": "IVR", "VoiceUrl": "http://a.example/ivr", "VoiceMethod": "get"},
        auth=api.auth,
    )
    assert created.status_code == 200, created.text
    app = created.json()
    assert list(app) == APP_KEYS
    assert app["sid"].startswith("AP") and app["voice_method"] == "GET"
    number = await api.create(
        PhoneNumber="+15105555555", VoiceApplicationSid=app["sid"], SmsApplicationSid=app["sid"]
    )
    assert number.json()["voice_application_name"] == "IVR"
    assert number.json()["sms_application_name"] == "IVR"
    url = api.url(f"Applications/{app['sid']}.json")
    renamed = await api.client.put(url, data={"FriendlyName": "Menu", "SmsUrl": ""}, auth=api.auth)
    assert renamed.status_code == 200 and renamed.json()["friendly_name"] == "Menu"
    shown = await api.client.get(
        api.url(f"IncomingPhoneNumbers/{number.json()['sid']}.json"), auth=api.auth
    )
    assert shown.json()["voice_application_name"] == "Menu"
    listing = (await api.client.get(apps, auth=api.auth)).json()
    assert listing["total"] == 1 and listing["applications"][0]["sid"] == app["sid"]
    assert (await api.client.delete(url, auth=api.auth)).status_code == 204
    assert (await api.client.get(url, auth=api.auth)).status_code == 404
    unlinked = await api.store.get_number(number.json()["sid"])
    assert unlinked.voice_application_sid is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, 20001),
        ({"FriendlyName": "a", "VoiceUrl": "x"}, 21502),
        ({"FriendlyName": "a", "SmsMethod": "X"}, 21503),
    ],
)
async def test_application_validation(api: Api, data: dict[str, str], code: int) -> None:
    resp = await api.client.post(api.url("Applications.json"), data=data, auth=api.auth)
    assert resp.status_code == 400 and resp.json()["code"] == code
    assert (await api.client.get(api.url("Applications.json"), auth=api.auth)).json()["total"] == 0


async def test_application_of_another_account_is_refused(api: Api) -> None:
    child, child_token = await api.sub_account()
    app = (
        await api.client.post(
            api.url("Applications.json", child),
            data={"FriendlyName": "c"},
            auth=(child, child_token),
        )
    ).json()
    resp = await api.create(PhoneNumber="+15105555555", VoiceApplicationSid=app["sid"])
    assert resp.status_code == 400 and resp.json()["code"] == 20001
    other = await api.client.get(api.url(f"Applications/{app['sid']}.json"), auth=api.auth)
    assert other.status_code == 403


async def _available(api: Api, path: str, **params: str) -> list[dict[str, object]]:
    resp = await api.client.get(
        api.url(f"AvailablePhoneNumbers/{path}"), params=params, auth=api.auth
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json()["available_phone_numbers"])


async def test_available_numbers_filters(api: Api) -> None:
    found = await _available(api, "US/Local.json", AreaCode="510")
    assert found and all(str(n["phone_number"]).startswith("+1510") for n in found)
    first = found[0]
    assert list(first) == [
        "friendly_name", "phone_number", "lata", "rate_center", "region", "postal_code",
        "iso_country", "capabilities", "beta",
    ]  # fmt: skip
    assert first["capabilities"] == {"voice": True, "sms": True, "mms": True, "fax": False}
    tollfree = await _available(api, "US/TollFree.json")
    assert {n["phone_number"] for n in tollfree} >= {"+18005550100", "+18885551234"}
    # Contains: letters map to the keypad, '*' is one digit
    assert [
        n["phone_number"] for n in await _available(api, "US/TollFree.json", Contains="JKL0100")
    ] == ["+18005550100"]
    assert [
        n["phone_number"] for n in await _available(api, "US/TollFree.json", Contains="555*2*4")
    ] == ["+18885551234"]
    assert len(await _available(api, "US/Local.json", PageSize="3")) == 3
    in_beta = {n["phone_number"] for n in await _available(api, "US/Local.json", AreaCode="312")}
    no_beta = {
        n["phone_number"]
        for n in await _available(api, "US/Local.json", AreaCode="312", Beta="false")
    }
    assert "+13127443483" in in_beta and "+13127443483" not in no_beta
    fax = await _available(api, "US/Local.json", FaxEnabled="true")
    assert fax and all(n["capabilities"]["fax"] for n in fax)  # type: ignore[index]
    # a purchased number is no longer available
    await api.create(PhoneNumber="+15105555555")
    assert "+15105555555" not in {
        n["phone_number"] for n in await _available(api, "US/Local.json", AreaCode="510")
    }


async def test_available_numbers_errors_and_xml(api: Api) -> None:
    bad = await api.client.get(
        api.url("AvailablePhoneNumbers/US/Local.json"), params={"AreaCode": "51"}, auth=api.auth
    )
    assert bad.status_code == 400 and bad.json()["code"] == 21451
    unknown = await api.client.get(
        api.url("AvailablePhoneNumbers/US/Satellite.json"), auth=api.auth
    )
    assert unknown.status_code == 404
    xml = await api.client.get(api.url("AvailablePhoneNumbers/US/TollFree"), auth=api.auth)
    root = SafeET.fromstring(xml.text)
    items = root.findall("AvailablePhoneNumbers/AvailablePhoneNumber")
    assert items and items[0].findtext("Capabilities/Voice") == "true"


async def test_calls_and_notifications_are_readable(api: Api) -> None:
    child, _ = await api.sub_account()
    now = time.time()
    call = CallRecord(
        new_sid("CA"), api.admin.sid, None, "+15550001", "+15105555555", "inbound", "completed",
        "exact", now - 10, now - 9, now, 9.0, 200, ["http://a.example/v"], False, None,
    )  # fmt: skip
    foreign = CallRecord(
        new_sid("CA"), child, None, "a", "b", "inbound", "failed", None, now, None, now, None,
        404, [], False, 11200,
    )  # fmt: skip
    await api.store.record_calls([call, foreign])
    note = Notification(
        new_sid("NO"),
        api.admin.sid,
        call.sid,
        11200,
        "error",
        "HTTP 500",
        "http://a.example/v",
        now,
    )
    await api.store.add_notifications([note])
    calls = (await api.client.get(api.url("Calls.json"), auth=api.auth)).json()
    assert calls["total"] == 1 and calls["calls"][0]["sid"] == call.sid
    one = (await api.client.get(api.url(f"Calls/{call.sid}.json"), auth=api.auth)).json()
    assert (
        one["match_kind"] == "exact"
        and one["urls"] == ["http://a.example/v"]
        and one["duration"] == 9
    )
    assert (
        await api.client.get(api.url(f"Calls/{foreign.sid}.json"), auth=api.auth)
    ).status_code == 403
    notes = (await api.client.get(api.url("Notifications.json"), auth=api.auth)).json()
    assert notes["notifications"][0]["error_code"] == 11200
    xml = await api.client.get(api.url(f"Notifications/{note.sid}"), auth=api.auth)
    assert SafeET.fromstring(xml.text).findtext("Notification/MessageText") == "HTTP 500"
    missing = await api.client.get(api.url("Notifications/NO0.json"), auth=api.auth)
    assert missing.status_code == 404


async def test_messages_are_readable_at_both_paths(api: Api) -> None:
    from rcmlrouter.store.records import MessageRecord

    message = MessageRecord(
        new_sid("SM"), api.admin.sid, None, "alice", "+15105555555", "hi", "inbound",
        "received", time.time(), ["http://a.example/sms"],
    )  # fmt: skip
    await api.store.record_messages([message])
    await api.store.record_messages([MessageRecord(**{**_fields(message), "status": "failed"})])
    for path in ("SMS/Messages.json", "Messages.json"):
        body = (await api.client.get(api.url(path), auth=api.auth)).json()
        assert body["total"] == 1 and body["messages"][0]["status"] == "failed"
    one = await api.client.get(api.url(f"SMS/Messages/{message.sid}"), auth=api.auth)
    assert SafeET.fromstring(one.text).findtext("SMSMessage/Body") == "hi"


def _fields(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]


async def test_calls_filter_by_number_and_start_day(api: Api) -> None:
    day = 1_700_000_000.0 - 1_700_000_000.0 % 86400  # 2023-11-14 00:00 UTC
    starts = (("+15105555555", day + 60), ("+15105555555", day + 86400 + 60))
    starts += (("+15105550000", day + 120),)
    calls = [
        CallRecord(
            new_sid("CA"),
            api.admin.sid,
            None,
            "+15550001",
            to,
            "inbound",
            "completed",
            "exact",
            start,
            start,
            start + 5,
            5.0,
            200,
        )
        for to, start in starts
    ]
    await api.store.record_calls(calls)

    async def sids(**params: str) -> list[str]:
        body = (await api.client.get(api.url("Calls.json"), params=params, auth=api.auth)).json()
        return [c["sid"] for c in body["calls"]]

    assert await sids(To="+15105555555") == [calls[1].sid, calls[0].sid]
    assert await sids(StartTime="2023-11-14") == [calls[2].sid, calls[0].sid]
    assert await sids(To="+15105555555", **{"StartTime>": "2023-11-15"}) == [calls[1].sid]
    assert await sids(From="+15550002") == []
    bad = await api.client.get(api.url("Calls.json"), params={"StartTime": "14/11"}, auth=api.auth)
    assert bad.status_code == 400 and bad.json()["code"] == 20001
    page = (
        await api.client.get(api.url("Calls.json"), params={"To": "+15105555555"}, auth=api.auth)
    ).json()
    assert "To=%2B15105555555" in page["first_page_uri"] and page["total"] == 2
