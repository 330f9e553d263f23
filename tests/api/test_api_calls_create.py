"""POST Calls over real HTTP on a real SQLite file (the API alone: the queue is a list that
records what the API handed over; the dialling is exercised in tests/e2e/test_calls_api*.py):
the stored queued call and its request, both bases' shapes, the parameters' readings, the
operator's settings (``caller_id``, no trunk, a full queue), the Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from api_harness import PUBLIC_BASE, Api, start_api

from rcmlrouter.api.context import CallSettings
from rcmlrouter.store.records import CallRecord

FROM = "+15105555555"
TWIML = "<Response><Hangup/></Response>"


@dataclass
class Handed:
    items: list[CallRecord] = field(default_factory=list)
    is_full: bool = False

    def full(self) -> bool:
        return self.is_full

    def submit(self, item: CallRecord) -> None:
        self.items.append(item)


async def started(tmp_path: Path, **settings: object) -> AsyncIterator[tuple[Api, Handed]]:
    queue = Handed()
    calls = CallSettings(queue, **settings)  # type: ignore[arg-type]
    async for api in start_api(tmp_path, public_base_url=PUBLIC_BASE, calls=calls):
        assert (await api.create(PhoneNumber=FROM)).status_code == 200
        yield api, queue


@pytest.fixture
async def placing(tmp_path: Path) -> AsyncIterator[tuple[Api, Handed]]:
    async for pair in started(tmp_path, can_dial_numbers=True):
        yield pair


def url(api: Api, base: str = "/2010-04-01") -> str:
    return f"{api.root}{base}/Accounts/{api.admin.sid}/Calls.json"


async def post(
    api: Api, data: dict[str, str] | list[tuple[str, str]], base: str = "/2010-04-01"
) -> httpx.Response:
    """POST the form (a list: repeated parameters, as the twilio SDK sends them)."""
    form = urlencode(data)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return await api.client.post(url(api, base), content=form, auth=api.auth, headers=headers)


async def test_a_call_is_stored_queued_with_its_request_and_handed_over(placing) -> None:
    api, queue = placing
    data = [
        ("To", "(415) 555-0100"), ("From", FROM), ("Url", "/voice.xml"), ("Method", "get"),
        ("StatusCallback", "http://127.0.0.1:9/s"), ("StatusCallbackEvent", "initiated ringing"),
        ("StatusCallbackEvent", "completed"), ("Timeout", "900"), ("SendDigits", "1w#"),
    ]  # fmt: skip
    response = await post(api, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued" and body["direction"] == "outbound-api"
    assert body["to"] == "+14155550100" and body["from"] == FROM
    [handed] = queue.items
    stored = await api.store.get_call(body["sid"])
    assert stored == handed and stored.end_time is None
    request = stored.originate
    assert request is not None
    assert request.url == "http://127.0.0.1:8080/voice.xml" and request.method == "GET"
    assert request.status_callback_events == ("initiated", "ringing", "completed")
    assert request.timeout == 600 and request.send_digits == "1w#"  # 900 taken as 600
    assert request.api_version == "2010-04-01" and request.time_limit == 14_400


async def test_the_restcomm_base_answers_200_in_its_shape(placing) -> None:
    api, _ = placing
    data = {"To": "sips:bob@example.com", "From": FROM, "Twiml": TWIML}
    response = await post(api, data, base="/restcomm/2012-04-24")
    assert response.status_code == 200, response.text
    assert response.json()["api_version"] == "2012-04-24"
    assert response.json()["to"] == "sips:bob@example.com"


async def test_precedence_url_then_twiml_then_application(placing) -> None:
    api, queue = placing
    data = {"To": "+14155550100", "From": FROM, "Url": "http://127.0.0.1:9/v", "Twiml": TWIML}
    assert (await post(api, data)).status_code == 201
    request = queue.items[-1].originate
    assert request is not None and request.url and request.twiml is None


async def test_caller_id_any_lets_any_from_through(tmp_path: Path) -> None:
    async for api, queue in started(tmp_path, caller_id="any", can_dial_numbers=True):
        response = await post(api, {"To": "+14155550100", "From": "Alice", "Twiml": TWIML})
        assert response.status_code == 201, response.text
        assert queue.items[0].from_ == "Alice"
        bad = await post(api, {"To": "+14155550100", "From": "A\tB", "Twiml": TWIML})
        assert (bad.status_code, bad.json()["code"]) == (400, 21212)


async def test_without_trunks_a_number_is_unreachable_but_a_sip_uri_is_not(tmp_path: Path) -> None:
    async for api, _ in started(tmp_path, can_dial_numbers=False):
        number = await post(api, {"To": "+14155550100", "From": FROM, "Twiml": TWIML})
        assert (number.status_code, number.json()["code"]) == (400, 21214)
        uri = await post(api, {"To": "sip:bob@127.0.0.1:5070", "From": FROM, "Twiml": TWIML})
        assert uri.status_code == 201


async def test_a_full_queue_is_429_and_creates_nothing(placing) -> None:
    api, queue = placing
    queue.is_full = True
    response = await post(api, {"To": "+14155550100", "From": FROM, "Twiml": TWIML})
    assert (response.status_code, response.json()["code"]) == (429, 20429)
    assert response.headers["Retry-After"] == "1"
    assert queue.items == [] and await api.store.unfinished_calls() == []


async def test_an_idempotency_key_replays_the_first_answer_and_a_different_request_is_422(
    placing,
) -> None:
    api, queue = placing
    data = {"To": "+14155550100", "From": FROM, "Twiml": TWIML}
    headers = {"Idempotency-Key": "k1"}
    first = await api.client.post(url(api), data=data, auth=api.auth, headers=headers)
    again = await api.client.post(url(api), data=data, auth=api.auth, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    other = await api.client.post(
        url(api), data={**data, "To": "+14155550199"}, auth=api.auth, headers=headers
    )
    assert (other.status_code, other.json()["code"]) == (422, 20422)
    assert len(queue.items) == 1 and len(await api.store.unfinished_calls()) == 1


async def test_an_idempotency_key_tells_requests_apart_by_every_repeated_value(placing) -> None:
    """``StatusCallbackEvent`` is sent once per event: a request that asks for other events
    under the same key is a different request (422), the same events again are a replay."""
    api, queue = placing
    base = {"To": "+14155550100", "From": FROM, "Twiml": TWIML,
            "StatusCallback": "http://127.0.0.1:9/s"}  # fmt: skip
    headers = {"Idempotency-Key": "k-events"}

    async def post_events(*events: str) -> Any:
        data = {**base, "StatusCallbackEvent": list(events)}
        return await api.client.post(url(api), data=data, auth=api.auth, headers=headers)

    first = await post_events("initiated", "answered")
    assert first.status_code == 201, first.text
    again = await post_events("initiated", "answered")
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await post_events("initiated", "ringing")
    assert (other.status_code, other.json()["code"]) == (422, 20422)
    assert len(queue.items) == 1


async def test_other_accounts_numbers_are_no_caller_id(placing) -> None:
    api, _ = placing
    sub_sid, sub_token = await api.sub_account()
    response = await api.client.post(
        f"{api.root}/2010-04-01/Accounts/{sub_sid}/Calls.json",
        data={"To": "+14155550100", "From": FROM, "Twiml": TWIML},
        auth=(sub_sid, sub_token),
    )
    assert (response.status_code, response.json()["code"]) == (400, 21210)
