"""An unreachable store is a 503 with Retry-After, never a 500 or a hang."""

from __future__ import annotations

import pytest
from api_harness import Api

from rcmlrouter.errors import StoreUnavailableError


async def test_an_unreachable_store_is_a_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable(*_args: object, **_kwargs: object) -> None:
        raise StoreUnavailableError("database unavailable: connection refused")

    assert await api.count() >= 0  # the account is cached; the next read reaches the store
    monkeypatch.setattr(api.store, "list_numbers", unreachable)
    response = await api.client.get(api.url("IncomingPhoneNumbers.json"), auth=api.auth)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["code"] == 20503
