"""POST Messages (Twilio base) and POST SMS/Messages (Restcomm base) over real HTTP on a real
SQLite file: every validation case with its Twilio code, both shapes, the message stored queued
and handed to the sender's queue, and the Idempotency-Key (replay, 422, concurrent duplicates,
refusals not remembered, expiry, a malformed header).

The sender's queue here is the seam the composition root fills (``WorkQueue``): a list that
records what the API handed over; the real sender is exercised in tests/e2e/test_messages_api.py.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from api_harness import PUBLIC_BASE, Api, start_api
from twilio.base.exceptions import TwilioRestException

from rcmlrouter.api.idempotency import IDEMPOTENCY_TTL, prune_expired
from rcmlrouter.store.filters import MessageQuery
from rcmlrouter.store.records import MessageRecord
from support.twilio_sdk import twilio_client

FROM = "+15105555555"
TO = "+15551230000"


@dataclass
class Handed:
    """The sender's queue as the API sees it."""

    items: list[MessageRecord] = field(default_factory=list)
    is_full: bool = False

    def full(self) -> bool:
        return self.is_full

    def submit(self, item: MessageRecord) -> None:
        self.items.append(item)


@dataclass
class Sending:
    api: Api
    queue: Handed


@pytest.fixture
async def sending(tmp_path: Path) -> AsyncIterator[Sending]:
    queue = Handed()
    async for api in start_api(
        tmp_path, public_base_url=PUBLIC_BASE, message_queue=queue, sms_gateway="sip:gw:5060"
    ):
        resp = await api.create(PhoneNumber=FROM)
        assert resp.status_code == 200, resp.text
        resp = await api.create(PhoneNumber="mms:+12345678", isSIP="true")
        assert resp.status_code == 200, resp.text
        resp = await api.create(PhoneNumber="4444", isSIP="true", SmsCapable="false")
        assert resp.status_code == 200, resp.text
        yield Sending(api, queue)


def twilio(api: Api, path: str = "Messages.json", account: str | None = None) -> str:
    return f"{api.root}/2010-04-01/Accounts/{account or api.admin.sid}/{path}"


async def post(
    api: Api, url: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return await api.client.post(url, data=params, auth=api.auth, headers=headers or {})


async def stored(api: Api) -> list[MessageRecord]:
    return (await api.store.list_messages(MessageQuery(api.admin.sid), 0, 1000)).items


# -- success and shapes --------------------------------------------------------------------------


async def test_twilio_create_is_201_queued_and_handed_to_the_sender(sending: Sending) -> None:
    api = sending.api
    callback = "http://app.example.com/status"
    resp = await post(
        api, twilio(api), To=TO, From=FROM, Body="Hello €uro", StatusCallback=callback
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "queued" and body["direction"] == "outbound-api"
    assert (body["to"], body["from"], body["body"]) == (TO, FROM, "Hello €uro")
    assert body["num_segments"] == "1" and body["date_sent"] is None
    assert body["uri"] == f"/2010-04-01/Accounts/{api.admin.sid}/Messages/{body['sid']}.json"
    (record,) = await stored(api)
    assert sending.queue.items == [record]
    assert record.sid == body["sid"] and record.status == "queued"
    assert (record.status_callback, record.status_callback_method) == (callback, "POST")
    assert record.api_version == "2010-04-01" and record.number_sid is not None
    fetched = await api.client.get(twilio(api, f"Messages/{record.sid}.json"), auth=api.auth)
    assert fetched.json() == body


async def test_restcomm_create_is_200_in_restcomm_shape_json_and_xml(sending: Sending) -> None:
    api = sending.api
    resp = await post(api, api.url("SMS/Messages.json"), To=TO, From=FROM, Body="hi")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "queued" and body["phone_number_sid"] is not None
    assert body["uri"].startswith(f"/restcomm/2012-04-24/Accounts/{api.admin.sid}/SMS/Messages/")
    assert "num_segments" not in body  # Restcomm's shape
    resp = await post(
        api, api.url("SMS/Messages"), To="sip:bob@192.0.2.1:5070", From=FROM, Body="x"
    )
    assert resp.status_code == 200, resp.text
    root = ET.fromstring(resp.text)
    assert root.tag == "RestcommResponse"
    assert root.findtext("SMSMessage/Status") == "queued"
    assert root.findtext("SMSMessage/To") == "sip:bob@192.0.2.1:5070"
    assert {m.api_version for m in await stored(api)} == {"2012-04-24"}
    # Messages on the Restcomm base and SMS/Messages on the Twilio base work too
    assert (
        await post(api, api.url("Messages.json"), To=TO, From=FROM, Body="a")
    ).status_code == 200
    resp = await post(api, twilio(api, "SMS/Messages.json"), To=TO, From=FROM, Body="b")
    assert resp.status_code == 201
    assert len(sending.queue.items) == 4


async def test_sip_number_from_and_unencoded_plus(sending: Sending) -> None:
    api = sending.api
    # curl -d From=mms:+12345678 -d To=+15551230000: both "+" arrive as spaces
    raw = "From=mms:+12345678&To=+15551230000&Body=hi"
    resp = await api.client.post(
        twilio(api),
        content=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=api.auth,
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["from"], resp.json()["to"]) == ("mms:+12345678", TO)
    # an E.164 number given without its "+"
    resp = await post(api, twilio(api), To=TO, From=FROM[1:], Body="hi")
    assert resp.status_code == 201 and resp.json()["from"] == FROM


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 160, "1"), ("a" * 161, "2"), ("€" * 81, "2"), ("ç" * 70, "1"), ("ç" * 71, "2")],
)
async def test_num_segments(sending: Sending, body: str, segments: str) -> None:
    resp = await post(sending.api, twilio(sending.api), To=TO, From=FROM, Body=body)
    assert resp.json()["num_segments"] == segments


# -- validation ----------------------------------------------------------------------------------

VALID = {"To": TO, "From": FROM, "Body": "hi"}


@pytest.mark.parametrize(
    ("changes", "code", "names"),
    [
        ({"To": None}, 21604, "To"),
        ({"To": ""}, 21604, "To"),
        ({"To": "not a number"}, 21211, "To"),
        ({"To": "sips:bob@example.com"}, 21211, "To"),
        ({"To": "+1" + "2" * 300}, 21211, "To"),
        ({"From": None}, 21603, "From"),
        ({"From": "+1555\t123"}, 21212, "From"),
        ({"From": "+15559999999"}, 21606, "From"),  # not the account's
        ({"From": "4444"}, 21661, "From"),  # the account's, SmsCapable=false
        ({"To": FROM}, 21266, "To"),
        ({"Body": None}, 21602, "Body"),
        ({"Body": ""}, 21602, "Body"),
        ({"Body": "x" * 1601}, 21617, "Body"),
        ({"StatusCallback": "ftp://example.com/x"}, 21609, "StatusCallback"),
        ({"StatusCallback": "not a url"}, 21609, "StatusCallback"),
        ({"StatusCallbackMethod": "PUT"}, 21503, "StatusCallbackMethod"),
        ({"MediaUrl": "http://example.com/cat.jpg"}, 20001, "MediaUrl"),
        ({"MessagingServiceSid": "MG" + "0" * 32}, 20001, "MessagingServiceSid"),
        ({"ContentSid": "HX" + "0" * 32}, 20001, "ContentSid"),
        ({"SendAt": "2030-01-01T00:00:00Z"}, 20001, "SendAt"),
        ({"ScheduleType": "fixed"}, 20001, "ScheduleType"),
        ({"ValidityPeriod": "600"}, 20001, "ValidityPeriod"),
        ({"ApplicationSid": "AP" + "0" * 32}, 20001, "ApplicationSid"),
        ({"SmartEncoded": "true"}, 20001, "SmartEncoded"),
        ({"SendAsMms": "true"}, 20001, "SendAsMms"),
    ],
)
async def test_refusals_carry_twilio_codes_on_both_bases(
    sending: Sending, changes: dict[str, str | None], code: int, names: str
) -> None:
    api = sending.api
    params = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    for url, json_url in ((twilio(api), True), (api.url("SMS/Messages"), False)):
        resp = await api.client.post(url, data=params, auth=api.auth)
        assert resp.status_code == 400, resp.text
        if json_url:
            assert resp.json()["code"] == code
            assert names in resp.json()["message"]
        else:
            assert ET.fromstring(resp.text).findtext("RestException/Code") == str(code)
    assert await stored(api) == [] and sending.queue.items == []


async def test_default_values_of_unimplemented_parameters_are_accepted(sending: Sending) -> None:
    api = sending.api
    resp = await post(
        api, twilio(api), **VALID, SmartEncoded="false", ShortenUrls="false",
        SendAsMms="false", ProvideFeedback="false", RiskCheck="disable",
        ContentRetention="retain", AddressRetention="retain", UnknownToTwilio="x",
    )  # fmt: skip
    assert resp.status_code == 201, resp.text


async def test_no_gateway_refuses_phone_numbers_but_not_sip_uris(tmp_path: Path) -> None:
    async for api in start_api(tmp_path, message_queue=Handed(), sms_gateway=""):
        assert (await api.create(PhoneNumber=FROM)).status_code == 200
        resp = await post(api, twilio(api), **VALID)
        assert (resp.status_code, resp.json()["code"]) == (400, 21612)
        resp = await post(api, twilio(api), **{**VALID, "To": "sip:bob@192.0.2.1"})
        assert resp.status_code == 201


async def test_another_accounts_number_and_the_tree(sending: Sending) -> None:
    api = sending.api
    sub, token = await api.sub_account()
    # the parent posts through the sub-account's URL: the sub-account's numbers count
    resp = await post(api, twilio(api, account=sub), **VALID)
    assert (resp.status_code, resp.json()["code"]) == (400, 21606)
    resp = await api.client.post(twilio(api), data=VALID, auth=(sub, token))
    assert resp.status_code == 403  # a sub-account may not act on its parent


async def test_a_full_sender_queue_answers_429(sending: Sending) -> None:
    sending.queue.is_full = True
    resp = await post(sending.api, twilio(sending.api), **VALID)
    assert (resp.status_code, resp.json()["code"]) == (429, 20429)
    assert resp.headers["Retry-After"] == "1"
    assert await stored(sending.api) == []


# -- Idempotency-Key -----------------------------------------------------------------------------


async def test_a_retried_key_replays_the_first_answer_and_creates_nothing(
    sending: Sending,
) -> None:
    api = sending.api
    key = {"Idempotency-Key": "order-42"}
    first = await post(api, twilio(api), key, **VALID)
    again = await post(api, twilio(api), key, **VALID)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # byte for byte, "queued" as it was
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(await stored(api)) == 1 and len(sending.queue.items) == 1
    # the same key on another account is another key
    sub, _ = await api.sub_account()
    other = await post(api, twilio(api, account=sub), key, **VALID)
    assert other.json()["code"] == 21606  # judged afresh (the sub-account has no number)


@pytest.mark.parametrize(
    "other",
    [
        {"params": {**VALID, "Body": "changed"}},
        {"path": "SMS/Messages.json"},
        {"path": "Messages.xml"},
        {"params": {**VALID, "StatusCallback": "http://example.com/s"}},
    ],
)
async def test_a_key_reused_for_another_request_is_422(
    sending: Sending, other: dict[str, object]
) -> None:
    api = sending.api
    key = {"Idempotency-Key": "reused"}
    assert (await post(api, twilio(api), key, **VALID)).status_code == 201
    url = twilio(api, str(other.get("path", "Messages.json")))
    params = other.get("params", VALID)
    resp = await api.client.post(url, data=params, auth=api.auth, headers=key)
    assert resp.status_code == 422, resp.text
    assert "20422" in resp.text and "Idempotency-Key" in resp.text
    assert len(await stored(api)) == 1


async def test_concurrent_duplicates_create_one_message(sending: Sending) -> None:
    api = sending.api
    key = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(*(post(api, twilio(api), key, **VALID) for _ in range(20)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["sid"] for a in answers}) == 1
    assert sum("Idempotent-Replayed" in a.headers for a in answers) == 19
    assert len(await stored(api)) == 1 and len(sending.queue.items) == 1


async def test_a_refused_request_is_not_remembered(sending: Sending) -> None:
    api = sending.api
    key = {"Idempotency-Key": "fix-and-retry"}
    refused = await post(api, twilio(api), key, **{**VALID, "Body": ""})
    assert refused.status_code == 400
    fixed = await post(api, twilio(api), key, **VALID)
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers


async def test_keys_expire_after_24_hours_and_are_pruned(sending: Sending) -> None:
    api = sending.api
    key = {"Idempotency-Key": "daily"}
    first = await post(api, twilio(api), key, **VALID)
    # a day later (the record's clock moved back instead)
    await api.store.execute_many(
        "UPDATE idempotency_keys SET created_at = created_at - ?", [(IDEMPOTENCY_TTL + 1,)]
    )
    second = await post(api, twilio(api), key, **VALID)
    assert second.status_code == 201 and second.json()["sid"] != first.json()["sid"]
    assert "Idempotent-Replayed" not in second.headers
    await api.store.execute_many(
        "UPDATE idempotency_keys SET created_at = created_at - ?", [(IDEMPOTENCY_TTL + 1,)]
    )
    assert await prune_expired(api.store) == 1
    assert await prune_expired(api.store, time.time()) == 0


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9"])
async def test_a_malformed_key_is_400(sending: Sending, value: str) -> None:
    api = sending.api
    headers = {"Idempotency-Key": value}
    resp = await api.client.post(
        twilio(api),
        data=VALID,
        auth=api.auth,
        headers={k: v.encode("latin-1") for k, v in headers.items()},  # type: ignore[misc]
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == 20001 and "Idempotency-Key" in resp.json()["message"]
    assert await stored(api) == []


# -- the official twilio SDK -------------------------------------------------------------------


async def test_the_twilio_sdk_creates_and_fetches_unchanged(sending: Sending) -> None:
    api = sending.api
    client = twilio_client(api.root, api.admin.sid, api.token)
    created = await asyncio.to_thread(
        client.messages.create,
        to=TO,
        from_=FROM,
        body="Hello from the SDK",
        status_callback="http://app.example.com/status",
    )
    assert (created.status, created.direction, created.num_segments) == (
        "queued", "outbound-api", "1"
    )  # fmt: skip
    fetched = await asyncio.to_thread(client.messages(created.sid).fetch)
    assert (fetched.sid, fetched.body, fetched.to, fetched.from_) == (
        created.sid, "Hello from the SDK", TO, FROM
    )  # fmt: skip
    assert fetched.date_created is not None and fetched.date_sent is None
    with pytest.raises(TwilioRestException) as refused:
        await asyncio.to_thread(client.messages.create, to=TO, from_="+15550000000", body="x")
    assert (refused.value.status, refused.value.code) == (400, 21606)
    with pytest.raises(TwilioRestException) as refused:
        await asyncio.to_thread(
            client.messages.create, to=TO, from_=FROM, media_url=["http://example.com/a.png"]
        )
    assert refused.value.code == 20001 and "MediaUrl" in refused.value.msg
