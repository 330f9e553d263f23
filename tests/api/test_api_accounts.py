"""Authentication, account isolation, sub-accounts and AccountSid transfer (SPEC §1.1, §1.4)."""

from __future__ import annotations

import re

import pytest
from api_harness import Api

from rcmlrouter.store.ids import verify_password


async def test_missing_or_wrong_credentials_are_401(api: Api) -> None:
    url = api.url("IncomingPhoneNumbers.json")
    for auth in (None, (api.admin.sid, "0" * 32), ("nobody@example.com", api.token)):
        resp = await api.client.get(url, auth=auth)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="rcmlrouter"'
        assert resp.json()["code"] == 20003
    resp = await api.client.get(url, headers={"Authorization": "Basic !!!"})
    assert resp.status_code == 401


async def test_a_cached_account_still_needs_the_right_token(api: Api) -> None:
    url = api.url("IncomingPhoneNumbers.json")
    assert (await api.client.get(url, auth=api.auth)).status_code == 200  # now cached
    resp = await api.client.get(url, auth=(api.admin.sid, "f" * 32))
    assert resp.status_code == 401
    assert (await api.client.get(url, auth=api.auth)).status_code == 200


async def test_unknown_account_is_404(api: Api) -> None:
    resp = await api.client.get(
        api.url("IncomingPhoneNumbers.json", "AC" + "1" * 32), auth=api.auth
    )
    assert resp.status_code == 404 and resp.json()["code"] == 20404


async def test_create_and_read_sub_account(api: Api) -> None:
    resp = await api.client.post(
        f"{api.root}/restcomm/2012-04-24/Accounts.json",
        data={
            "FriendlyName": "Tenant",
            "EmailAddress": "Ops@Tenant.example",
            "Password": "s3cretpass",
        },
        auth=api.auth,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert re.fullmatch(r"AC[0-9a-f]{32}", body["sid"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["auth_token"])
    assert body["parent_sid"] == api.admin.sid
    assert body["organization_sid"] == api.admin.organization_sid
    stored = await api.store.get_account(body["sid"])
    assert stored.password_hash and stored.password_hash.startswith("scrypt$")
    assert verify_password("s3cretpass", stored.password_hash)
    assert not verify_password("wrong-pass", stored.password_hash)
    own = await api.client.get(
        f"{api.root}/restcomm/2012-04-24/Accounts/{body['sid']}.json",
        auth=("ops@tenant.example", body["auth_token"]),
    )
    assert own.status_code == 200 and own.json()["friendly_name"] == "Tenant"
    dup = await api.client.post(
        f"{api.root}/restcomm/2012-04-24/Accounts.json",
        data={"EmailAddress": "ops@tenant.example"},
        auth=api.auth,
    )
    assert dup.status_code == 400 and "EmailAddress" in dup.json()["message"]


@pytest.mark.parametrize(
    "data", [{"EmailAddress": "not-an-email"}, {"Password": "short"}, {"FriendlyName": "x" * 65}]
)
async def test_sub_account_validation(api: Api, data: dict[str, str]) -> None:
    resp = await api.client.post(
        f"{api.root}/restcomm/2012-04-24/Accounts.json", data=data, auth=api.auth
    )
    assert resp.status_code == 400
    assert resp.json()["code"] in (20001, 21506)


async def test_isolation_between_parent_child_and_sibling(api: Api) -> None:
    child, child_token = await api.sub_account()
    sibling, sibling_token = await api.sub_account()
    parent_number = (await api.create(PhoneNumber="+15105555555")).json()
    # the parent manages the child's numbers through the child's URL
    made = await api.client.post(
        api.url("IncomingPhoneNumbers.json", child),
        data={"PhoneNumber": "+16175551212"},
        auth=api.auth,
    )
    assert made.status_code == 200 and made.json()["account_sid"] == child
    child_number = made.json()["sid"]
    child_auth = (child, child_token)
    # the child cannot read the parent's list or number
    resp = await api.client.get(api.url("IncomingPhoneNumbers.json"), auth=child_auth)
    assert resp.status_code == 403 and resp.json()["code"] == 20403
    resp = await api.client.get(
        api.url(f"IncomingPhoneNumbers/{parent_number['sid']}.json", child), auth=child_auth
    )
    assert resp.status_code == 403
    # a sibling cannot read the child's number, nor list its numbers
    resp = await api.client.get(
        api.url(f"IncomingPhoneNumbers/{child_number}.json", child), auth=(sibling, sibling_token)
    )
    assert resp.status_code == 403
    # the child's number is not reachable through the parent's own URL
    resp = await api.client.get(api.url(f"IncomingPhoneNumbers/{child_number}.json"), auth=api.auth)
    assert resp.status_code == 403
    # lists are per URL account
    assert await api.count() == 1
    assert await api.count(child) == 1


async def _transfer(api: Api, number: str, owner: str, target: str, auth: tuple[str, str]) -> int:
    resp = await api.client.post(
        api.url(f"IncomingPhoneNumbers/{number}.json", owner),
        data={"AccountSid": target},
        auth=auth,
    )
    return resp.status_code


async def test_account_sid_transfer_rules(api: Api) -> None:
    child, child_token = await api.sub_account()
    grandchild, _ = await api.sub_account((child, child_token))
    sibling, _ = await api.sub_account()
    number = (await api.create(PhoneNumber="+15105555555")).json()["sid"]
    # to a descendant: allowed
    assert await _transfer(api, number, api.admin.sid, grandchild, api.auth) == 200
    assert (await api.store.get_number(number)).account_sid == grandchild
    # the child moves it from its descendant to itself, then up to its ancestor
    child_auth = (child, child_token)
    assert await _transfer(api, number, grandchild, child, child_auth) == 200
    assert await _transfer(api, number, child, api.admin.sid, child_auth) == 200
    assert (await api.store.get_number(number)).account_sid == api.admin.sid
    # back to the child, who may not give it to an unrelated (sibling) account
    assert await _transfer(api, number, api.admin.sid, child, api.auth) == 200
    assert await _transfer(api, number, child, sibling, child_auth) == 403
    assert (await api.store.get_number(number)).account_sid == child
    resp = await api.client.post(
        api.url(f"IncomingPhoneNumbers/{number}.json", child),
        data={"AccountSid": "AC" + "2" * 32},
        auth=child_auth,
    )
    assert resp.status_code == 400 and resp.json()["code"] == 20001


async def test_transfer_clears_foreign_applications(api: Api) -> None:
    child, _ = await api.sub_account()
    app = (
        await api.client.post(
            api.url("Applications.json"), data={"FriendlyName": "ivr"}, auth=api.auth
        )
    ).json()
    number = (await api.create(PhoneNumber="+15105555555", VoiceApplicationSid=app["sid"])).json()
    assert number["voice_application_name"] == "ivr"
    moved = await api.client.post(
        api.url(f"IncomingPhoneNumbers/{number['sid']}.json"),
        data={"AccountSid": child},
        auth=api.auth,
    )
    assert moved.status_code == 200
    assert moved.json()["voice_application_sid"] is None
    assert moved.json()["account_sid"] == child
