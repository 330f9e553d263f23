"""Paging math and list filters of IncomingPhoneNumbers (SPEC §1.4)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from api_harness import Api, sip_numbers


def _page_of(uri: str | None) -> int | None:
    if uri is None:
        return None
    return int(parse_qs(urlsplit(uri).query)["Page"][0])


@pytest.mark.parametrize(
    ("total", "page_size", "num_pages", "last_count"),
    [(0, 50, 0, 0), (1, 50, 1, 1), (50, 50, 1, 50), (51, 50, 2, 1), (501, 50, 11, 1)],
)
async def test_paging_math(
    api: Api, total: int, page_size: int, num_pages: int, last_count: int
) -> None:
    await api.store.bulk_insert_numbers(sip_numbers(api.admin, total))
    url = api.url("IncomingPhoneNumbers.json")
    first = (await api.client.get(url, params={"PageSize": page_size}, auth=api.auth)).json()
    assert first["total"] == total
    assert first["num_pages"] == num_pages
    assert first["page"] == 0 and first["start"] == 0
    assert first["end"] == (min(total, page_size) - 1 if total else 0)
    assert first["previous_page_uri"] is None
    assert _page_of(first["last_page_uri"]) == max(num_pages - 1, 0)
    assert _page_of(first["next_page_uri"]) == (1 if num_pages > 1 else None)
    if num_pages:
        last_page = num_pages - 1
        last = (
            await api.client.get(
                url, params={"Page": last_page, "PageSize": page_size}, auth=api.auth
            )
        ).json()
        assert len(last["incomingPhoneNumbers"]) == last_count
        assert last["start"] == last_page * page_size
        assert last["end"] == total - 1
        assert last["next_page_uri"] is None
        assert _page_of(last["previous_page_uri"]) == (last_page - 1 if last_page else None)
    past = (
        await api.client.get(
            url, params={"Page": num_pages + 3, "PageSize": page_size}, auth=api.auth
        )
    ).json()
    assert past["incomingPhoneNumbers"] == []
    assert past["total"] == total


async def test_pages_are_ordered_and_disjoint(api: Api) -> None:
    await api.store.bulk_insert_numbers(sip_numbers(api.admin, 120))
    seen: list[str] = []
    for page in range(3):
        body = (
            await api.client.get(
                api.url("IncomingPhoneNumbers.json"),
                params={"Page": page, "PageSize": 50},
                auth=api.auth,
            )
        ).json()
        seen.extend(n["phone_number"] for n in body["incomingPhoneNumbers"])
    assert seen == sorted(seen) and len(set(seen)) == 120


@pytest.mark.parametrize(
    "params", [{"Page": "-1"}, {"PageSize": "0"}, {"PageSize": "1001"}, {"Page": "x"}]
)
async def test_bad_paging_parameters(api: Api, params: dict[str, str]) -> None:
    resp = await api.client.get(api.url("IncomingPhoneNumbers.json"), params=params, auth=api.auth)
    assert resp.status_code == 400 and resp.json()["code"] == 20001


async def _phones(api: Api, path: str = "IncomingPhoneNumbers.json", **params: str) -> list[str]:
    resp = await api.client.get(api.url(path), params=params, auth=api.auth)
    assert resp.status_code == 200, resp.text
    return [n["phone_number"] for n in resp.json()["incomingPhoneNumbers"]]


async def test_filters(api: Api) -> None:
    for phone in ("+15105555555", "+18005550100", "+14155399940", "+13127443483"):
        assert (await api.create(PhoneNumber=phone)).status_code == 200
    for raw in ("5_5%5", "15a5555555"):
        assert (await api.create(PhoneNumber=raw, isSIP="true")).status_code == 200
    await api.create(PhoneNumber="7777", isSIP="true", FriendlyName="Front desk")
    assert await _phones(api, PhoneNumber="555") == ["+15105555555", "+18005550100", "15a5555555"]
    assert await _phones(api, PhoneNumber="+1510") == ["+15105555555"]
    assert await _phones(api, PhoneNumber="1510") == ["+15105555555"]
    # '*' is exactly one digit: it does not match the 'a' of 15a5555555
    assert await _phones(api, PhoneNumber="151*555555") == ["+15105555555"]
    assert await _phones(api, PhoneNumber="15*5555555") == []
    assert await _phones(api, PhoneNumber="5_5") == ["5_5%5"]
    assert await _phones(api, PhoneNumber="%") == ["5_5%5"]
    assert await _phones(api, FriendlyName="Front desk") == ["7777"]
    assert await _phones(api, FriendlyName="Front") == []
    assert "+13127443483" in await _phones(api, Beta="true")
    assert "+13127443483" not in await _phones(api, Beta="false")
    assert await _phones(api, "IncomingPhoneNumbers/TollFree.json") == ["+18005550100"]
    assert await _phones(api, "IncomingPhoneNumbers/Mobile.json") == ["+14155399940"]
    assert await _phones(api, "IncomingPhoneNumbers/Local.json") == ["+13127443483", "+15105555555"]
    bad = await api.client.get(
        api.url("IncomingPhoneNumbers.json"), params={"Beta": "no"}, auth=api.auth
    )
    assert bad.status_code == 400 and bad.json()["code"] == 20001


async def test_filter_uris_keep_filters(api: Api) -> None:
    numbers = [replace(n, friendly_name="same") for n in sip_numbers(api.admin, 3)]
    await api.store.bulk_insert_numbers(numbers)
    body = (
        await api.client.get(
            api.url("IncomingPhoneNumbers.json"),
            params={"FriendlyName": "same", "PageSize": 2},
            auth=api.auth,
        )
    ).json()
    assert body["total"] == 3 and body["num_pages"] == 2
    query = parse_qs(urlsplit(body["next_page_uri"]).query)
    assert query == {"FriendlyName": ["same"], "Page": ["1"], "PageSize": ["2"]}
