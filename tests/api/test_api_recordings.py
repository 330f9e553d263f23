"""Recordings over real HTTP: JSON/XML metadata, the ``.wav`` audio, lists, auth, ownership."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
from api_harness import PUBLIC_BASE, Api, start_api

from rcmlrouter.media.recorder import wav_header
from rcmlrouter.store.ids import new_sid
from rcmlrouter.store.records import Recording


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    options = {"public_base_url": PUBLIC_BASE, "recordings_dir": tmp_path / "recordings"}
    async for value in start_api(tmp_path, **options):
        yield value


async def add(api: Api, tmp_path: Path, account: str, call: str, created: float) -> Recording:
    recording = Recording(new_sid("RE"), account, call, 1.26, created)
    await api.store.add_recording(recording)
    path = tmp_path / "recordings" / account / f"{recording.sid}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_header(4) + b"\x01\x00\x02\x00")
    return recording


async def test_recordings_metadata_audio_and_lists(api: Api, tmp_path: Path) -> None:
    first = await add(api, tmp_path, api.admin.sid, "CA1", time.time() - 10)
    second = await add(api, tmp_path, api.admin.sid, "CA2", time.time())
    get = api.client.get
    listed = (await get(api.url("Recordings.json"), auth=api.auth)).json()
    assert [r["sid"] for r in listed["recordings"]] == [second.sid, first.sid]
    one_call = (await get(api.url("Recordings.json?CallSid=CA1"), auth=api.auth)).json()
    assert [r["sid"] for r in one_call["recordings"]] == [first.sid]
    by_call = (await get(api.url("Calls/CA2/Recordings.json"), auth=api.auth)).json()
    assert [r["sid"] for r in by_call["recordings"]] == [second.sid]
    meta = (await get(api.url(f"Recordings/{first.sid}.json"), auth=api.auth)).json()
    assert meta["call_sid"] == "CA1" and meta["duration"] == "1"
    assert meta["file_uri"].endswith(f"/Recordings/{first.sid}.wav")
    xml = await get(api.url(f"Recordings/{first.sid}"), auth=api.auth)
    assert SafeET.fromstring(xml.text).findtext("Recording/CallSid") == "CA1"
    audio = await get(api.url(f"Recordings/{first.sid}.wav"), auth=api.auth)
    assert audio.status_code == 200 and audio.headers["Content-Type"] == "audio/wav"
    assert audio.content.startswith(b"RIFF") and len(audio.content) == 48


async def test_recordings_need_auth_and_belong_to_their_account(api: Api, tmp_path: Path) -> None:
    mine = await add(api, tmp_path, api.admin.sid, "CA1", time.time())
    sub_sid, sub_token = await api.sub_account()
    url = api.url(f"Recordings/{mine.sid}.wav")
    assert (await api.client.get(url)).status_code == 401
    foreign = await api.client.get(
        api.url(f"Recordings/{mine.sid}.wav", sub_sid), auth=(sub_sid, sub_token)
    )
    assert foreign.status_code == 403
    missing = await api.client.get(api.url("Recordings/RE0.wav"), auth=api.auth)
    assert missing.status_code == 404 and "20404" in missing.text  # an XML error body
    (tmp_path / "recordings" / api.admin.sid / f"{mine.sid}.wav").unlink()
    gone = await api.client.get(url, auth=api.auth)
    assert gone.status_code == 404
