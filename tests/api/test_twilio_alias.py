"""The Twilio 2010-04-01 alias, driven by the official ``twilio`` SDK over real HTTP.

The API runs in the test's event loop (api_harness); the SDK is synchronous (requests), so
each SDK call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from api_harness import Api, sip_numbers
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import CallRecord, MessageRecord
from support.twilio_sdk import LoopbackHttpClient, twilio_client

T = TypeVar("T")


async def sdk(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def client_of(api: Api, sid: str | None = None, token: str | None = None) -> Client:
    return twilio_client(api.root, sid or api.admin.sid, token or api.token)


def twilio_url(api: Api, path: str, account: str | None = None) -> str:
    return f"{api.root}/2010-04-01/Accounts/{account or api.admin.sid}/{path}"


async def test_create_by_phone_number_is_201_in_twilio_shape(api: Api) -> None:
    client = client_of(api)
    number = await sdk(
        lambda: client.incoming_phone_numbers.create(
            phone_number="+15105555555", voice_url="http://127.0.0.1:9/voice"
        )
    )
    assert number.sid.startswith("PN") and number.phone_number == "+15105555555"
    assert number.api_version == "2010-04-01"
    assert number.capabilities == {"voice": True, "sms": True, "mms": True, "fax": False}
    assert number.friendly_name == "(510) 555-5555" and number.voice_url.endswith("/voice")
    assert (number.status, number.origin, number.voice_receive_mode) == (
        "in-use", "rcmlrouter", "voice"
    )  # fmt: skip
    assert number.trunk_sid is None and number.bundle_sid is None
    assert (number.emergency_status, number.address_requirements) == ("Inactive", "none")
    assert (
        number.uri == f"/2010-04-01/Accounts/{api.admin.sid}/IncomingPhoneNumbers/{number.sid}.json"
    )
    assert number.date_created is not None and number.beta is False
    resp = await api.client.post(
        twilio_url(api, "IncomingPhoneNumbers.json"),
        data={"PhoneNumber": "+16175551212"},
        auth=api.auth,
    )
    assert resp.status_code == 201
    body = resp.json()
    for key in ("identity_sid", "address_sid", "emergency_address_sid", "subresource_uris"):
        assert key in body
    assert "incomingPhoneNumbers" not in body and "voice_capable" not in body["capabilities"]


async def test_create_by_area_code_fetch_update_delete(api: Api) -> None:
    client = client_of(api)
    bought = await sdk(lambda: client.incoming_phone_numbers.create(area_code="212"))
    assert bought.phone_number.startswith("+1212") and bought.api_version == "2010-04-01"
    fetched = await sdk(lambda: client.incoming_phone_numbers(bought.sid).fetch())
    assert fetched.phone_number == bought.phone_number
    updated = await sdk(
        lambda: client.incoming_phone_numbers(bought.sid).update(
            friendly_name="front desk", sms_url="http://127.0.0.1:9/sms", voice_method="GET"
        )
    )
    assert (updated.friendly_name, updated.sms_url, updated.voice_method) == (
        "front desk", "http://127.0.0.1:9/sms", "GET"
    )  # fmt: skip
    assert updated.date_updated >= fetched.date_updated
    assert await sdk(lambda: client.incoming_phone_numbers(bought.sid).delete()) is True
    with pytest.raises(TwilioRestException) as missing:
        await sdk(lambda: client.incoming_phone_numbers(bought.sid).fetch())
    assert (missing.value.status, missing.value.code) == (404, 20404)
    local = await sdk(
        lambda: client.incoming_phone_numbers.local.create(phone_number="+12129205410")
    )
    assert local.api_version == "2010-04-01" and local.phone_number == "+12129205410"
    listed = await sdk(lambda: client.incoming_phone_numbers.local.list())
    assert [n.sid for n in listed] == [local.sid]
    assert await sdk(lambda: client.incoming_phone_numbers.toll_free.list()) == []


async def test_errors_carry_twilio_codes(api: Api) -> None:
    client = client_of(api)
    await sdk(lambda: client.incoming_phone_numbers.create(phone_number="+15105555555"))
    with pytest.raises(TwilioRestException) as taken:
        await sdk(lambda: client.incoming_phone_numbers.create(phone_number="+15105555555"))
    assert (taken.value.status, taken.value.code) == (400, 21422)
    with pytest.raises(TwilioRestException) as area:
        await sdk(lambda: client.incoming_phone_numbers.create(area_code="12"))
    assert area.value.code == 21451
    with pytest.raises(TwilioRestException) as url:
        await sdk(
            lambda: client.incoming_phone_numbers.create(phone_number="+16175551212", voice_url="x")
        )
    assert url.value.code == 21502
    wrong = twilio_client(api.root, api.admin.sid, "0" * 32)
    with pytest.raises(TwilioRestException) as denied:
        await sdk(lambda: wrong.api.accounts(api.admin.sid).fetch())
    assert (denied.value.status, denied.value.code) == (401, 20003)
    resp = await api.client.get(twilio_url(api, "IncomingPhoneNumbers/PN404.json"), auth=api.auth)
    assert set(resp.json()) == {"code", "message", "more_info", "status"}


async def test_list_over_several_pages(api: Api) -> None:
    await api.store.bulk_insert_numbers(sip_numbers(api.admin, 25))
    client = client_of(api)
    listed = await sdk(lambda: client.incoming_phone_numbers.list(page_size=10))
    assert [n.phone_number for n in listed] == [f"7{i:06d}" for i in range(25)]
    http = client.http_client
    assert isinstance(http, LoopbackHttpClient)
    assert sum("PageToken=PA" in url for url in http.urls) == 2  # pages 1 and 2 by cursor
    limited = await sdk(lambda: client.incoming_phone_numbers.list(limit=12, page_size=5))
    assert len(limited) == 12
    found = await sdk(lambda: client.incoming_phone_numbers.list(phone_number="700001*"))
    assert [n.phone_number for n in found] == [f"70000{i}" for i in range(10, 20)]
    named = await sdk(lambda: client.incoming_phone_numbers.list(friendly_name="n3"))
    assert [n.phone_number for n in named] == ["7000003"]


async def test_page_token_is_stable_under_inserts(api: Api) -> None:
    await api.store.bulk_insert_numbers(sip_numbers(api.admin, 9, prefix="5"))
    client = client_of(api)
    first = await sdk(lambda: client.incoming_phone_numbers.page(page_size=4))
    assert [n.phone_number for n in first] == ["5000000", "5000001", "5000002", "5000003"]
    # numbers bought meanwhile sort before the cursor: an offset would shift the next page
    await api.store.bulk_insert_numbers(sip_numbers(api.admin, 3, prefix="1"))
    second = await sdk(first.next_page)
    assert second is not None
    assert [n.phone_number for n in second] == ["5000004", "5000005", "5000006", "5000007"]
    third = await sdk(second.next_page)
    assert third is not None and [n.phone_number for n in third] == ["5000008"]
    assert third.next_page_url is None
    back = await sdk(third.previous_page)
    assert back is not None
    assert [n.phone_number for n in back] == ["5000004", "5000005", "5000006", "5000007"]
    resp = await api.client.get(
        twilio_url(api, "IncomingPhoneNumbers.json"), params={"PageSize": "4"}, auth=api.auth
    )
    meta = resp.json()
    assert (meta["page"], meta["page_size"], meta["start"], meta["end"]) == (0, 4, 0, 3)
    assert meta["previous_page_uri"] is None and "PageToken=PA" in meta["next_page_uri"]
    assert meta["first_page_uri"].startswith(f"/2010-04-01/Accounts/{api.admin.sid}/")
    assert not {"total", "num_pages", "last_page_uri"} & set(meta)
    offset = await api.client.get(
        twilio_url(api, "IncomingPhoneNumbers.json"),
        params={"PageSize": "4", "Page": "2"},  # 12 numbers now: the last page, by offset
        auth=api.auth,
    )
    assert [n["phone_number"] for n in offset.json()["incoming_phone_numbers"]] == [
        "5000005", "5000006", "5000007", "5000008"
    ]  # fmt: skip
    assert offset.json()["next_page_uri"] is None
    assert "PageToken=PB" in offset.json()["previous_page_uri"]
    bad = await api.client.get(
        twilio_url(api, "IncomingPhoneNumbers.json"), params={"PageToken": "PAxx"}, auth=api.auth
    )
    assert (bad.status_code, bad.json()["code"]) == (400, 20001)


async def test_account_sid_transfer_between_parent_and_sub_account(api: Api) -> None:
    client = client_of(api)
    sub = await sdk(lambda: client.api.accounts.create(friendly_name="tenant"))
    assert sub.sid.startswith("AC") and sub.owner_account_sid == api.admin.sid
    number = await sdk(lambda: client.incoming_phone_numbers.create(phone_number="+15105555555"))
    moved = await sdk(lambda: client.incoming_phone_numbers(number.sid).update(account_sid=sub.sid))
    assert moved.account_sid == sub.sid
    assert f"/Accounts/{sub.sid}/" in moved.uri
    sub_client = client_of(api, sub.sid, sub.auth_token)
    mine = await sdk(lambda: sub_client.incoming_phone_numbers.list())
    assert [n.sid for n in mine] == [number.sid]
    assert await sdk(lambda: client.incoming_phone_numbers.list()) == []
    back = await sdk(
        lambda: (
            client.api.accounts(sub.sid)
            .incoming_phone_numbers(number.sid)
            .update(account_sid=api.admin.sid)
        )
    )
    assert back.account_sid == api.admin.sid
    other = await sdk(lambda: client.api.accounts.create(friendly_name="other"))
    with pytest.raises(TwilioRestException) as outside:  # siblings are outside each other's tree
        await sdk(
            lambda: sub_client.incoming_phone_numbers(number.sid).update(account_sid=other.sid)
        )
    assert outside.value.status in (403, 404)
    other_client = client_of(api, other.sid, other.auth_token)
    with pytest.raises(TwilioRestException) as sibling:
        await sdk(lambda: other_client.api.accounts(sub.sid).fetch())
    assert (sibling.value.status, sibling.value.code) == (403, 20403)


async def test_accounts_read_list_update(api: Api) -> None:
    client = client_of(api)
    me = await sdk(lambda: client.api.accounts(api.admin.sid).fetch())
    assert me.sid == api.admin.sid and me.status == "active" and me.type == "Full"
    assert me.subresource_uris["incoming_phone_numbers"].endswith("/IncomingPhoneNumbers.json")
    sub = await sdk(lambda: client.api.accounts.create(friendly_name="tenant"))
    listed = await sdk(lambda: client.api.accounts.list())
    assert {a.sid for a in listed} == {api.admin.sid, sub.sid}
    renamed = await sdk(lambda: client.api.accounts(sub.sid).update(friendly_name="renamed"))
    assert renamed.friendly_name == "renamed"
    suspended = await sdk(lambda: client.api.accounts(sub.sid).update(status="suspended"))
    assert suspended.status == "suspended"
    by_status = await sdk(lambda: client.api.accounts.list(status="suspended"))
    assert [a.sid for a in by_status] == [sub.sid]
    sub_client = client_of(api, sub.sid, sub.auth_token)
    with pytest.raises(TwilioRestException) as locked:
        await sdk(lambda: sub_client.api.accounts(sub.sid).fetch())
    assert locked.value.status == 401
    await sdk(lambda: client.api.accounts(sub.sid).update(status="active"))
    assert await sdk(lambda: sub_client.incoming_phone_numbers.list()) == []
    with pytest.raises(TwilioRestException) as own:
        await sdk(lambda: client.api.accounts(api.admin.sid).update(status="closed"))
    assert own.value.status == 403
    await sdk(lambda: client.api.accounts(sub.sid).update(status="closed"))
    with pytest.raises(TwilioRestException) as closed:
        await sdk(lambda: client.api.accounts(sub.sid).update(status="active"))
    assert closed.value.status == 400


async def test_available_numbers_with_filters(api: Api) -> None:
    client = client_of(api)
    local = client.available_phone_numbers("US").local
    oakland = await sdk(lambda: local.list(area_code=510, page_size=20))
    assert oakland and all(n.phone_number.startswith("+1510") for n in oakland)
    assert oakland[0].capabilities.keys() == {"voice", "SMS", "MMS", "fax"}
    assert oakland[0].region == "CA" and oakland[0].iso_country == "US"
    fax = await sdk(lambda: local.list(in_region="CA", fax_enabled=True))
    assert {n.phone_number for n in fax} == {"+15109754345", "+14155168910"}
    contains = await sdk(lambda: local.list(contains="555****"))
    assert contains and all("555" in n.phone_number for n in contains)
    assert await sdk(lambda: local.list(area_code=510, mms_enabled=True, sms_enabled=True))
    toll_free = await sdk(lambda: client.available_phone_numbers("US").toll_free.list())
    mobile = await sdk(lambda: client.available_phone_numbers("US").mobile.list())
    assert all(n.phone_number for n in [*toll_free, *mobile])
    bought = await sdk(lambda: client.incoming_phone_numbers.create(phone_number="+15109754345"))
    again = await sdk(lambda: local.list(in_region="CA", fax_enabled=True))
    assert bought.phone_number not in {n.phone_number for n in again}


async def test_application_round_trip(api: Api) -> None:
    client = client_of(api)
    app = await sdk(
        lambda: client.applications.create(
            friendly_name="ivr", voice_url="http://127.0.0.1:9/ivr", voice_method="GET"
        )
    )
    assert app.sid.startswith("AP") and app.voice_method == "GET"
    assert app.uri == f"/2010-04-01/Accounts/{api.admin.sid}/Applications/{app.sid}.json"
    fetched = await sdk(lambda: client.applications(app.sid).fetch())
    assert fetched.voice_url == "http://127.0.0.1:9/ivr"
    updated = await sdk(lambda: client.applications(app.sid).update(sms_url="http://h/sms"))
    assert updated.sms_url == "http://h/sms" and updated.friendly_name == "ivr"
    number = await sdk(
        lambda: client.incoming_phone_numbers.create(
            phone_number="+15105555555", voice_application_sid=app.sid
        )
    )
    assert number.voice_application_sid == app.sid
    assert [a.sid for a in await sdk(lambda: client.applications.list())] == [app.sid]
    assert await sdk(lambda: client.applications(app.sid).delete()) is True
    assert await sdk(lambda: client.applications.list()) == []
    cleared = await sdk(lambda: client.incoming_phone_numbers(number.sid).fetch())
    assert cleared.voice_application_sid is None


async def test_calls_and_messages_read(api: Api) -> None:
    now = time.time()
    call = CallRecord(
        "", api.admin.sid, None, "alice", "+15105555555", "inbound", "completed", "exact",
        now - 60, now - 50, now - 20, 30.4, 200,
    )  # fmt: skip
    calls = [replace(call, sid=new_sid("CA"), start_time=now - 60 + i) for i in range(3)]
    await api.store.record_calls(calls)
    message = MessageRecord(
        new_sid("SM"), api.admin.sid, None, "alice", "+15105555555", "hi", "inbound",
        "received", now,
    )  # fmt: skip
    await api.store.record_messages([message, replace(message, sid=new_sid("SM"), to="other")])
    client = client_of(api)
    listed = await sdk(lambda: client.calls.list(page_size=2))
    assert {c.sid for c in listed} == {c.sid for c in calls}
    fetched_call = await sdk(lambda: client.calls(calls[0].sid).fetch())
    assert (fetched_call.status, fetched_call.duration, fetched_call.direction) == (
        "completed", "30", "inbound"
    )  # fmt: skip
    assert fetched_call.to_formatted == "(510) 555-5555" and fetched_call.start_time is not None
    messages = await sdk(lambda: client.messages.list(to="+15105555555"))
    assert [m.sid for m in messages] == [message.sid]
    fetched = await sdk(lambda: client.messages(message.sid).fetch())
    assert (fetched.body, fetched.status, fetched.direction) == ("hi", "received", "inbound")
    assert fetched.uri.endswith(f"/Messages/{message.sid}.json")


async def test_xml_without_json_suffix(api: Api) -> None:
    client = client_of(api)
    await sdk(lambda: client.incoming_phone_numbers.create(phone_number="+15105555555"))
    resp = await api.client.get(twilio_url(api, "IncomingPhoneNumbers"), auth=api.auth)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(resp.text)
    assert root.tag == "TwilioResponse"
    numbers = root.find("IncomingPhoneNumbers")
    assert numbers is not None and numbers.get("page") == "0"
    item = numbers.find("IncomingPhoneNumber")
    assert item is not None and item.findtext("ApiVersion") == "2010-04-01"
    assert item.findtext("Capabilities/Voice") == "true"
    error = await api.client.get(twilio_url(api, "IncomingPhoneNumbers/PN404"), auth=api.auth)
    assert ET.fromstring(error.text).tag == "TwilioResponse"
    assert ET.fromstring(error.text).findtext("RestException/Code") == "20404"


async def test_restcomm_and_twilio_share_one_store(api: Api) -> None:
    resp = await api.create(PhoneNumber="+15105555555")
    assert resp.status_code == 200 and resp.json()["api_version"] == "2012-04-24"
    sid = resp.json()["sid"]
    client = client_of(api)
    seen = await sdk(lambda: client.incoming_phone_numbers(sid).fetch())
    assert seen.api_version == "2012-04-24" and seen.capabilities["voice"] is True
    twilio_made = await sdk(
        lambda: client.incoming_phone_numbers.create(phone_number="+16175551212")
    )
    restcomm = await api.client.get(
        api.url(f"IncomingPhoneNumbers/{twilio_made.sid}.json"), auth=api.auth
    )
    body: dict[str, Any] = restcomm.json()
    assert body["api_version"] == "2010-04-01" and body["capabilities"]["voice_capable"] is True
    assert body["uri"].startswith("/restcomm/2012-04-24/")


async def test_create_statuses_and_the_restcomm_accounts_list(api: Api) -> None:
    twilio_root = f"{api.root}/2010-04-01/Accounts"
    made = await api.client.post(f"{twilio_root}.json", data={"FriendlyName": "t"}, auth=api.auth)
    assert made.status_code == 201 and made.json()["owner_account_sid"] == api.admin.sid
    app = await api.client.post(
        twilio_url(api, "Applications.json"), data={"FriendlyName": "a"}, auth=api.auth
    )
    assert app.status_code == 201 and app.json()["api_version"] == "2010-04-01"
    restcomm_root = f"{api.root}/restcomm/2012-04-24/Accounts"
    listed = await api.client.get(f"{restcomm_root}.json", auth=api.auth)
    assert listed.status_code == 200 and listed.json()["total"] == 2
    assert {a["sid"] for a in listed.json()["accounts"]} == {api.admin.sid, made.json()["sid"]}
    renamed = await api.client.post(
        f"{restcomm_root}/{made.json()['sid']}.json", data={"FriendlyName": "r"}, auth=api.auth
    )
    assert renamed.status_code == 200 and renamed.json()["friendly_name"] == "r"
    bad = await api.client.post(
        f"{twilio_root}/{made.json()['sid']}.json", data={"Status": "gone"}, auth=api.auth
    )
    assert (bad.status_code, bad.json()["code"]) == (400, 20001)
