"""Records retention in the running daemon: with ``[records] max_age`` set, records older than
it are gone shortly after start (calls, messages, notifications, recordings with their WAV
files) and younger ones stay, readable through the API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rcmlrouter.store.records import CallRecord, MessageRecord, Notification, Recording
from rcmlrouter.store.sqlite import SqliteStore
from support.daemon import DaemonProcess

pytestmark = pytest.mark.e2e

MAX_AGE = 3600


async def _seed(node: DaemonProcess, old: float, young: float) -> None:
    store = await SqliteStore.open(node.db)
    account = node.account_sid
    try:
        calls = [
            CallRecord(sid, account, None, "a", "b", "inbound", "completed", None, t, None, t,
                       0.0, 603)
            for sid, t in (("CA" + "0" * 32, old), ("CA" + "1" * 32, young))
        ]  # fmt: skip
        messages = [
            MessageRecord(sid, account, None, "a", "b", "hi", "inbound", "received", t)
            for sid, t in (("SM" + "0" * 32, old), ("SM" + "1" * 32, young))
        ]
        await store.write_journal(calls, messages, [])
        await store.add_notifications(
            [Notification("NO" + "0" * 32, account, None, 11200, "error", "x", None, old)]
        )
        for sid, t in (("RE" + "0" * 32, old), ("RE" + "1" * 32, young)):
            await store.add_recording(Recording(sid, account, None, 1.0, t))
    finally:
        await store.close()


def _wav(node: DaemonProcess, digit: str) -> Path:
    path = node.workdir / "data" / "recordings" / node.account_sid / f"RE{digit * 32}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    return path


def test_records_older_than_max_age_are_pruned(tmp_path: Path) -> None:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_RECORDS_MAX_AGE=str(MAX_AGE)).init()
    now = time.time()
    asyncio.run(_seed(node, old=now - 2 * MAX_AGE, young=now - 60))
    old_file, young_file = _wav(node, "0"), _wav(node, "1")
    node.start()
    try:
        line = node.wait_log("records.pruned", timeout=20)
        assert line is not None, "\n".join(node.raw[-20:])
        assert (line["calls"], line["messages"], line["notifications"], line["recordings"]) == (
            1,
            1,
            1,
            1,
        )
        with node.api() as api:
            for resource, digit, status in (
                ("Calls", "0", 404),
                ("Calls", "1", 200),
                ("SMS/Messages", "0", 404),
                ("SMS/Messages", "1", 200),
                ("Notifications", "0", 404),
                ("Recordings", "0", 404),
                ("Recordings", "1", 200),
            ):
                prefix = {"Calls": "CA", "SMS/Messages": "SM", "Notifications": "NO"}
                sid = prefix.get(resource, "RE") + digit * 32
                response = api.get(f"/{resource}/{sid}.json")
                assert response.status_code == status, (resource, sid, response.text)
            assert api.get(f"/Recordings/RE{'1' * 32}.wav").status_code == 200
        assert not old_file.exists() and young_file.exists()
        metrics = node.api().get(f"http://127.0.0.1:{node.api_port}/metrics").text
        assert 'rcmlrouter_records_pruned_total{kind="recordings"} 1.0' in metrics
    finally:
        node.stop()
