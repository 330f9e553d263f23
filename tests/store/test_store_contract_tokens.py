"""AuthToken rotation on both engines: a new token, the old one kept until its grace ends."""

from __future__ import annotations

import time

import pytest

from rcmlrouter.errors import NotFoundError
from rcmlrouter.store.base import Store


async def test_rotation_keeps_the_old_token_for_the_grace(store: Store) -> None:
    admin, token = await store.ensure_default_setup()
    rotated = await store.rotate_auth_token(admin.sid, 60.0)
    assert rotated.auth_token != token and len(rotated.auth_token) == 32
    assert rotated.date_updated >= admin.date_updated
    assert (await store.get_account(admin.sid)).auth_token == rotated.auth_token
    now = time.time()
    assert await store.retired_tokens(admin.sid, now) == [token]
    assert await store.retired_tokens(admin.sid, now + 61) == []
    again = await store.rotate_auth_token(admin.sid, 0.0)  # no grace: nothing kept
    assert sorted(await store.retired_tokens(admin.sid, time.time())) == [token]
    assert again.auth_token not in await store.retired_tokens(admin.sid, time.time())
    with pytest.raises(NotFoundError):
        await store.rotate_auth_token("AC" + "0" * 32, 1.0)
