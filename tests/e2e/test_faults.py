"""Faults against the real daemon (issue 11, "Faults and load").

Webhooks: a primary that refuses, resets, hangs, trickles, answers 404/500, the wrong content
type or a truncated body sends the call to its fallback within the URL's own budget (``#ct=…&rt=…
&tt=…``), and the call's StatusCallback receiver gets exactly one ``completed``.

Store: SQLite locked by another process, or its disk full: calls are refused ``503`` with
``Retry-After`` within the commit wait (never a hang), the API answers ``503``, the logs say why,
and once the lock is released or space is freed calls route again without a restart.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.daemon import DaemonProcess
from support.faultserver import FaultServer
from support.ports import free_port
from support.rawsip import RawUac
from support.sipp import run_sipp, scenario

pytestmark = pytest.mark.e2e

# connect 0.5 s, read 0.7 s, total 1.5 s: the budget of one primary attempt
FRAGMENT = "#ct=500&rt=700&tt=1500"
BUDGET = 1.5
SLACK = 1.0  # the daemon's own work, scheduling on a loaded 2-core VM

FAULTS = {
    # kind: (path on the fault server or None for a closed port, ErrorCode at the fallback)
    "refuses": (None, "11205"),
    "resets": ("/reset", "11205"),
    "hangs": ("/hang", "11205"),
    "trickles": ("/trickle", "11205"),
    "answers-404": ("/status/404", "11200"),
    "answers-500": ("/status/500", "11200"),
    "wrong-content-type": ("/wrong-type", "12300"),
    "truncated-body": ("/truncated", "11206"),
}


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


def _statuses(server: FaultServer, dial: str, wait: float = 10.0) -> list[tuple[str, str]]:
    """(CallSid, CallStatus) of the callbacks for ``dial`` once ``completed`` came (and 0.5 s
    more, for a duplicate to show up)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        hits = [hit for hit in server.hits("/callback") if hit.params.get("n") == dial]
        if any(hit.params["CallStatus"] == "completed" for hit in hits):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    hits = [hit for hit in server.hits("/callback") if hit.params.get("n") == dial]
    return [(hit.params["CallSid"], hit.params["CallStatus"]) for hit in hits]


@pytest.mark.parametrize("kind", list(FAULTS))
def test_webhook_fault_goes_to_the_fallback_within_budget(
    daemon: DaemonProcess, faults: FaultServer, workdir: Path, dial: str, kind: str
) -> None:
    path, code = FAULTS[kind]
    if path is None:
        primary = f"http://127.0.0.1:{free_port()}/voice{FRAGMENT}"
    else:
        primary = faults.url(f"{path}?n={dial}") + FRAGMENT
    fallback = faults.url(f"/rcml?fallback={dial}")
    daemon.create_number(
        PhoneNumber=dial,
        isSIP="true",
        VoiceUrl=primary,
        VoiceFallbackUrl=fallback,
        StatusCallback=faults.url(f"/callback?n={dial}"),
    )
    started = time.monotonic()
    result = run_sipp(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=dial, workdir=workdir
    )
    assert result.ok, result.errors[-2000:]
    [reached] = [hit for hit in faults.hits("/rcml") if hit.params.get("fallback") == dial]
    assert reached.params["ErrorCode"] == code
    assert reached.params["ErrorUrl"] == primary.partition("#")[0]
    tried = [hit for hit in faults.hits(path) if hit.params.get("n") == dial] if path else []
    if path is not None:
        assert tried, "the primary was never requested"
        assert reached.at - tried[0].at < BUDGET + SLACK  # within the URL's budget
    assert reached.at - started < BUDGET + SLACK + 1.0  # SIPp's start-up on top
    call = reached.params["CallSid"]
    assert _statuses(faults, dial) == [
        (call, "ringing"),
        (call, "in-progress"),
        (call, "completed"),  # exactly one
    ]


# -- the store: SQLite locked, disk full ------------------------------------------------------

REFUSE_WITHIN = 3.0 + 1.5  # supervisor COMMIT_WAIT, then 503; slack for a loaded VM


def _invite(node: DaemonProcess, dial: str) -> tuple[int, str | None, float]:
    """One INVITE by hand: (final status, Retry-After, seconds to the final response)."""
    uac = RawUac(node.sip_port, dial)
    try:
        started = time.monotonic()
        uac.send(uac.invite())
        messages = uac.receive_until(lambda m: (m.status or 0) >= 200, 15)
        final = [m for m in messages if (m.status or 0) >= 200]
        assert final, "no final response: the call hangs"
        if final[0].status == 200:  # answered: ACK, the daemon hangs up (<Hangup/>)
            uac.send(uac.ack(final[0].header("To") or ""))
            for bye in uac.receive_until(lambda m: m.method == "BYE", 5):
                if bye.method == "BYE":
                    uac.send(uac.reply_ok(bye))
        return final[0].status or 0, final[0].header("Retry-After"), time.monotonic() - started
    finally:
        uac.close()


def _routes_again(node: DaemonProcess, dial: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, _, _ = _invite(node, dial)
        if status == 200:
            return
        assert time.monotonic() < deadline, f"calls still refused ({status}) after recovery"
        time.sleep(0.5)


def _api_write(node: DaemonProcess, dial: str) -> httpx.Response:
    with node.api() as client:
        client.timeout = httpx.Timeout(20)
        return client.post(
            "/IncomingPhoneNumbers.json", data={"PhoneNumber": dial, "isSIP": "true"}
        )


def _store_node(tmp_path: Path, faults: FaultServer, dial: str, db: Path) -> DaemonProcess:
    node = DaemonProcess(tmp_path / "node", RCMLROUTER_STORE_URL=f"sqlite:///{db}").start()
    node.create_number(
        PhoneNumber=dial,
        isSIP="true",
        VoiceUrl=faults.url("/rcml"),
        StatusCallback=faults.url(f"/callback?n={dial}"),
    )
    status, _, _ = _invite(node, dial)
    assert status == 200
    return node


HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def test_sqlite_locked_by_another_process_refuses_503_then_recovers(
    tmp_path: Path, faults: FaultServer, dial: str
) -> None:
    db = tmp_path / "locked.db"
    node = _store_node(tmp_path, faults, dial, db)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        status, retry_after, took = _invite(node, dial)
        assert (status, retry_after) == (503, "5") and took < REFUSE_WITHIN
        response = _api_write(node, "+15005550100")
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert response.json()["code"] == 20503
        failed = node.wait_log("store.write_failed", timeout=10)
        assert failed is not None and "locked by another process" in failed["error"]
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    try:
        _routes_again(node, dial)  # no restart
        assert _api_write(node, "+15005550100").status_code in (200, 201)
        _assert_one_final_callback_per_call(faults, dial)
    finally:
        node.stop()


def _assert_one_final_callback_per_call(faults: FaultServer, dial: str) -> None:
    time.sleep(1.5)  # the refused call's events commit once the store is back
    finals: dict[str, list[str]] = {}
    for hit in faults.hits("/callback"):
        if hit.params.get("n") == dial:
            status = hit.params["CallStatus"]
            finals.setdefault(hit.params["CallSid"], [])
            if status not in ("ringing", "in-progress"):
                finals[hit.params["CallSid"]].append(status)
    assert finals and all(len(statuses) == 1 for statuses in finals.values()), finals


@contextlib.contextmanager
def _small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the file system is full."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    # unbuffered: a buffered file would retry its unwritten tail at close and raise ENOSPC there
    with open(filler, "wb", buffering=0) as fh:
        try:
            while fh.write(chunk):
                pass
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


def test_sqlite_disk_full_refuses_503_then_recovers(
    tmp_path: Path, faults: FaultServer, dial: str
) -> None:
    with _small_tmpfs(tmp_path / "disk", "16m") as disk:
        db = disk / "full.db"
        node = _store_node(tmp_path, faults, dial, db)
        try:
            # an empty WAL: the next commit must grow it (a reused WAL needs no new space)
            with sqlite3.connect(db) as checkpoint:
                checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = _fill(disk)
            refused = []
            for _ in range(10):
                status, retry_after, took = _invite(node, dial)
                assert took < REFUSE_WITHIN  # refused or answered, never a hang
                if status == 503:
                    refused.append(retry_after)
                    break
            assert refused == ["5"], "no call was refused while the disk was full"
            response = _api_write(node, "+15005550101")
            assert response.status_code == 503, response.text
            failed = node.wait_log("store.write_failed", timeout=10)
            assert failed is not None and "disk is full" in failed["error"]
            filler.unlink()  # space is back
            _routes_again(node, dial)  # no restart
            assert _api_write(node, "+15005550101").status_code in (200, 201)
            _assert_one_final_callback_per_call(faults, dial)
        finally:
            node.stop()
