"""IncomingPhoneNumbers over real HTTP: the seed's curl examples, validation, update, delete."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import defusedxml.ElementTree as SafeET
import pytest
from api_harness import PUBLIC_BASE, Api, start_api

NUMBER_KEYS = [
    "sid", "account_sid", "friendly_name", "phone_number", "voice_url", "voice_method",
    "voice_fallback_url", "voice_fallback_method", "status_callback", "status_callback_method",
    "voice_caller_id_lookup", "voice_application_sid", "voice_application_name", "date_created",
    "date_updated", "sms_url", "sms_method", "sms_fallback_url", "sms_fallback_method",
    "sms_application_sid", "sms_application_name", "refer_url", "refer_method",
    "refer_application_sid", "refer_application_name", "capabilities", "api_version", "uri",
]  # fmt: skip
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


async def test_seed_create_provider_number(api: Api) -> None:
    resp = await api.create(PhoneNumber="+15105555555", VoiceUrl="http://demo.example.com/v.xml")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == NUMBER_KEYS
    assert re.fullmatch(r"PN[0-9a-f]{32}", body["sid"])
    assert body["account_sid"] == api.admin.sid
    assert body["phone_number"] == "+15105555555"
    assert body["friendly_name"] == "(510) 555-5555"
    assert body["voice_url"] == "http://demo.example.com/v.xml"
    assert body["voice_method"] == "POST"
    assert body["voice_fallback_url"] is None
    assert body["voice_caller_id_lookup"] is False
    assert body["api_version"] == "2012-04-24"
    assert body["capabilities"] == {
        "voice_capable": True, "sms_capable": True, "mms_capable": True, "fax_capable": False
    }  # fmt: skip
    assert RFC2822.match(body["date_created"])
    assert parsedate_to_datetime(body["date_created"]).utcoffset().total_seconds() == 0
    assert body["uri"] == (
        f"/restcomm/2012-04-24/Accounts/{api.admin.sid}/IncomingPhoneNumbers/{body['sid']}.json"
    )


async def test_seed_create_sip_number_relative_url_and_email_auth(api: Api) -> None:
    resp = await api.client.post(
        api.url("IncomingPhoneNumbers.json"),
        data={"PhoneNumber": "1234", "VoiceUrl": "/restcomm/demos/hello-play.xml", "isSIP": "true"},
        auth=(api.admin.email or "", api.token),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["phone_number"] == "1234"
    assert body["friendly_name"] == "1234"
    assert body["voice_url"] == f"{PUBLIC_BASE}/restcomm/demos/hello-play.xml"
    assert body["capabilities"]["voice_capable"] and body["capabilities"]["sms_capable"]


async def test_seed_create_mms_channel_with_sms_url(api: Api) -> None:
    resp = await api.create(
        PhoneNumber="mms:+12345678", SmsUrl="http://demo.example.com/sms.xml", isSIP="true"
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["phone_number"] == "mms:+12345678"
    assert resp.json()["sms_url"] == "http://demo.example.com/sms.xml"
    assert resp.json()["voice_url"] is None


async def test_unencoded_plus_from_curl_is_restored_in_sip_numbers(api: Api) -> None:
    # curl -d PhoneNumber=mms:+12345678 sends a raw "+", which form decoding turns into a space
    resp = await api.client.post(
        api.url("IncomingPhoneNumbers.json"),
        auth=api.auth,
        content=b"PhoneNumber=mms:+12345678&isSIP=true&SmsUrl=http://demo.example.com/s.xml",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["phone_number"] == "mms:+12345678"
    assert resp.json()["friendly_name"] == "mms:+12345678"


async def test_seed_list_then_delete(api: Api) -> None:
    created = (await api.create(PhoneNumber="+15105555555")).json()
    await api.create(PhoneNumber="*", isSIP="true")
    listing = await api.client.get(api.url("IncomingPhoneNumbers.json"), auth=api.auth)
    assert listing.status_code == 200
    assert [n["phone_number"] for n in listing.json()["incomingPhoneNumbers"]] == [
        "*",
        "+15105555555",
    ]
    resp = await api.client.delete(
        api.url(f"IncomingPhoneNumbers/{created['sid']}.json"), auth=api.auth
    )
    assert resp.status_code == 204 and resp.content == b""
    gone = await api.client.get(
        api.url(f"IncomingPhoneNumbers/{created['sid']}.json"), auth=api.auth
    )
    assert gone.status_code == 404 and gone.json()["code"] == 20404
    assert await api.count() == 1


async def test_without_restcomm_prefix_and_accept_json(api: Api) -> None:
    url = f"{api.root}/2012-04-24/Accounts/{api.admin.sid}/IncomingPhoneNumbers"
    resp = await api.client.post(
        url,
        data={"PhoneNumber": "+15105555555"},
        auth=api.auth,
        headers={"Accept": "application/json"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["uri"].startswith("/2012-04-24/Accounts/")


async def test_xml_instance_and_list(api: Api) -> None:
    resp = await api.client.post(
        api.url("IncomingPhoneNumbers"), data={"PhoneNumber": "+15105555555"}, auth=api.auth
    )
    assert resp.status_code == 200
    root = SafeET.fromstring(resp.text)
    assert root.tag == "RestcommResponse"
    number = root.find("IncomingPhoneNumber")
    assert number is not None
    assert number.findtext("PhoneNumber") == "+15105555555"
    assert number.findtext("AccountSid") == api.admin.sid
    assert number.findtext("VoiceCallerIdLookup") == "false"
    assert number.findtext("VoiceUrl") == ""
    assert number.findtext("Capabilities/VoiceCapable") == "true"
    assert [child.tag for child in number][:4] == [
        "Sid",
        "AccountSid",
        "FriendlyName",
        "PhoneNumber",
    ]
    listing = await api.client.get(api.url("IncomingPhoneNumbers"), auth=api.auth)
    numbers = SafeET.fromstring(listing.text).find("IncomingPhoneNumbers")
    assert numbers is not None
    assert numbers.get("total") == "1" and numbers.get("numpages") == "1"
    assert numbers.get("previouspageuri") == "" and numbers.get("nextpageuri") == ""
    assert len(numbers.findall("IncomingPhoneNumber")) == 1


async def test_xml_error_body(api: Api) -> None:
    resp = await api.client.post(api.url("IncomingPhoneNumbers"), data={}, auth=api.auth)
    assert resp.status_code == 400
    error = SafeET.fromstring(resp.text).find("RestException")
    assert error is not None
    assert error.findtext("Code") == "20001"
    assert error.findtext("Status") == "400"
    assert "PhoneNumber" in (error.findtext("Message") or "")
    assert error.findtext("MoreInfo")


BAD_CREATES = [
    ("IncomingPhoneNumbers.json", {}, 20001),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "not a number"}, 21421),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "+12125550100"}, 21422),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "+15105555555", "FriendlyName": "x" * 65}, 21506),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "+15105555555", "VoiceUrl": "ftp://a/b"}, 21502),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "+15105555555", "SmsUrl": "nourl"}, 21502),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "+15105555555", "VoiceMethod": "PUT"}, 21503),
    ("IncomingPhoneNumbers.json",
     {"PhoneNumber": "+15105555555", "VoiceCallerIdLookup": "yes"}, 20001),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "+15105555555", "isSIP": "maybe"}, 20001),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "(12", "isSIP": "true"}, 21505),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": ".*", "isSIP": "true"}, 21505),
    ("IncomingPhoneNumbers.json", {"PhoneNumber": "   ", "isSIP": "true"}, 20001),
    ("IncomingPhoneNumbers.json", {"AreaCode": "12"}, 21451),
    ("IncomingPhoneNumbers.json", {"AreaCode": "999"}, 21452),
    ("IncomingPhoneNumbers/Local.json", {"AreaCode": "510"}, 21457),
    ("IncomingPhoneNumbers/TollFree.json", {"PhoneNumber": "+15105555555"}, 21421),
    ("IncomingPhoneNumbers/Mobile.json", {"PhoneNumber": "+18005550100"}, 21421),
    ("IncomingPhoneNumbers.json",
     {"PhoneNumber": "+15105555555", "VoiceApplicationSid": "AP0"}, 20001),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params", "code"), BAD_CREATES)
async def test_create_validation_writes_nothing(
    api: Api, path: str, params: dict[str, str], code: int
) -> None:
    before = await api.store.get_inventory_entry("+15105555555")
    resp = await api.create(path, **params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == code
    assert resp.json()["status"] == 400
    assert await api.count() == 0
    assert await api.store.get_inventory_entry("+15105555555") == before


async def test_create_on_sub_resources_and_area_code(api: Api) -> None:
    tollfree = await api.create("IncomingPhoneNumbers/TollFree.json", PhoneNumber="+18005550100")
    assert tollfree.status_code == 200
    mobile = await api.create("IncomingPhoneNumbers/Mobile.json", PhoneNumber="+14155399940")
    assert mobile.status_code == 200
    picked = await api.create(AreaCode="617", PhoneNumber="+15105555555")
    assert picked.status_code == 200
    assert picked.json()["phone_number"].startswith("+1617")  # AreaCode wins


async def test_duplicates_are_refused(api: Api) -> None:
    assert (await api.create(PhoneNumber="+15105555555")).status_code == 200
    again = await api.create(PhoneNumber="(510) 555-5555")
    assert again.status_code == 400 and again.json()["code"] == 21422
    assert (await api.create(PhoneNumber="*77#", isSIP="true")).status_code == 200
    sip_again = await api.create(PhoneNumber="*77#", isSIP="true")
    assert sip_again.status_code == 400 and sip_again.json()["code"] == 21422
    assert await api.count() == 2


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"PhoneNumber": "+15105555555"}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"PhoneNumber=%FF%FE"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"A=" + b"x" * 70_000),
    ],
)
async def test_malformed_and_oversized_bodies(
    api: Api, headers: dict[str, str], body: bytes
) -> None:
    resp = await api.client.post(
        api.url("IncomingPhoneNumbers.json"), content=body, headers=headers, auth=api.auth
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] in (20001, 21421)
    assert await api.count() == 0


async def test_update_post_and_put_partial_and_clear(api: Api) -> None:
    created = (
        await api.create(
            PhoneNumber="+15105555555", VoiceUrl="http://a.example/v", SmsUrl="http://a.example/s"
        )
    ).json()
    url = api.url(f"IncomingPhoneNumbers/{created['sid']}.json")
    resp = await api.client.post(
        url, data={"VoiceMethod": "get", "FriendlyName": "Main line"}, auth=api.auth
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["voice_method"] == "GET" and body["friendly_name"] == "Main line"
    assert body["voice_url"] == "http://a.example/v"  # untouched
    resp = await api.client.put(url, data={"SmsUrl": "", "FriendlyName": ""}, auth=api.auth)
    assert resp.status_code == 200
    assert resp.json()["sms_url"] is None
    assert resp.json()["friendly_name"] == "(510) 555-5555"
    stored = await api.store.get_number(created["sid"])
    assert stored.date_updated > stored.date_created
    bad = await api.client.post(url, data={"StatusCallbackMethod": "DELETE"}, auth=api.auth)
    assert bad.status_code == 400 and bad.json()["code"] == 21503
    assert (await api.store.get_number(created["sid"])).status_callback_method == "POST"


async def test_unknown_sid_and_methods(api: Api) -> None:
    resp = await api.client.get(
        api.url("IncomingPhoneNumbers/PN" + "0" * 32 + ".json"), auth=api.auth
    )
    assert resp.status_code == 404 and resp.json()["code"] == 20404
    resp = await api.client.delete(api.url("IncomingPhoneNumbers/Local.json"), auth=api.auth)
    assert resp.status_code == 405


async def test_delete_recycles_after_delay(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async for api in start_api(tmp_path, recycle_after=3600):
        created = (await api.create(PhoneNumber="+15105555555")).json()
        await api.client.delete(api.url(f"IncomingPhoneNumbers/{created['sid']}"), auth=api.auth)
        again = await api.create(PhoneNumber="+15105555555")
        assert again.status_code == 400 and again.json()["code"] == 21422
        entry = await api.store.get_inventory_entry("+15105555555")
        assert entry.assigned_sid is None and entry.available_at > 0


async def test_delete_recycles_immediately_by_default(api: Api) -> None:
    created = (await api.create(PhoneNumber="+15105555555")).json()
    await api.client.delete(api.url(f"IncomingPhoneNumbers/{created['sid']}"), auth=api.auth)
    assert (await api.create(PhoneNumber="+15105555555")).status_code == 200


async def test_unexpected_error_is_500_with_body(api: Api) -> None:
    await api.store.close()
    resp = await api.client.get(api.url("IncomingPhoneNumbers.json"), auth=api.auth)
    assert resp.status_code == 500
    assert resp.json()["code"] == 20500
    assert "Traceback" not in resp.text


@pytest.mark.parametrize("pattern", ["^*77...33#$", "+1512.*", "7777|8888", "[45]234[23]", "*"])
async def test_seed_regex_numbers_are_accepted(api: Api, pattern: str) -> None:
    resp = await api.create(PhoneNumber=pattern, isSIP="true", VoiceUrl="http://a.example/v")
    assert resp.status_code == 200, resp.text
    assert resp.json()["phone_number"] == pattern
    change_seen = await api.store.get_number(resp.json()["sid"])
    assert change_seen.is_sip and change_seen.organization_sid == api.admin.organization_sid
