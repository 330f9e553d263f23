"""schemathesis against the live daemon (real HTTP): generated requests for every documented
operation, from the document served at /openapi.json, with the admin's credentials and its
AccountSid pinned in the paths (so requests reach the handlers, not just the 404 of an unknown
account). Every response: no 5xx; every 4xx has an error body with a code.

``make test`` runs a bounded sample: the Restcomm base with every suffix and the Twilio base's
``.json`` paths, ``API_FUZZ_EXAMPLES`` (default 20) examples each, positive and negative data,
about a minute. ``make soak`` runs every base and suffix with more examples
(``API_FUZZ_ALL=1 API_FUZZ_EXAMPLES=200``).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from support.daemon import DaemonProcess

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))
EVERYTHING = os.environ.get("API_FUZZ_ALL", "") not in ("", "0")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = DaemonProcess(
        tmp_path_factory.mktemp("fuzz"),
        RCMLROUTER_API_AUTH_FAIL_LIMIT="1000000",  # the fuzzer sends wrong credentials on purpose
    ).start()
    yield process
    process.stop()


def _pinned(document: dict[str, Any], account_sid: str) -> dict[str, Any]:
    """``{account_sid}`` replaced by the real sid; the sampled paths only, unless everything."""
    doc = copy.deepcopy(document)
    paths: dict[str, Any] = {}
    for path, item in doc["paths"].items():
        if not EVERYTHING and not _sampled(path):
            continue
        for operation in item.values():
            operation["parameters"] = [
                p for p in operation.get("parameters", []) if p["name"] != "account_sid"
            ]
        paths[path.replace("{account_sid}", account_sid)] = item
    doc["paths"] = paths
    return doc


def _sampled(path: str) -> bool:
    if path.startswith("/restcomm/2012-04-24/") or not path.startswith("/2"):
        return True
    return path.startswith("/2010-04-01/") and (path.endswith((".json", "}")))


def _error_code(text: str) -> int | None:
    """The code of an error body, JSON or XML; None when the body is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code")
        return code if isinstance(code, int) else None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    code_element = root.find("RestException/Code")
    found = code_element.text if code_element is not None else None
    return int(found) if found and found.isdigit() else None


@pytest.mark.timeout(120 + 60 * EXAMPLES * (4 if EVERYTHING else 1) // 20)
def test_generated_requests_get_no_5xx_and_coded_4xx(daemon: DaemonProcess) -> None:
    base_url = f"http://127.0.0.1:{daemon.api_port}"
    document = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(_pinned(document, daemon.account_sid))
    credentials = base64.b64encode(f"{daemon.account_sid}:{daemon.auth_token}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    problems: list[str] = []
    started, sent = time.monotonic(), 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                nonlocal sent
                response = case.call(base_url=base_url, headers=headers, timeout=10)
                sent += 1
                status = response.status_code
                where = f"{case.method} {case.formatted_path} {case.query!r} {case.body!r}"
                if status >= 500:
                    problems.append(f"{status} for {where}: {response.text[:300]}")
                elif status >= 400 and _error_code(response.text) is None:
                    problems.append(f"{status} without an error code for {where}")

            try:
                run()
            except Unsatisfiable:  # no invalid input exists (no parameters to break)
                continue
            except Exception as exc:
                problems.append(f"{operation.label} ({mode.value}): {exc!r}"[:400])
    elapsed = time.monotonic() - started
    print(f"schemathesis: {sent} requests in {elapsed:.1f} s")
    assert problems == [], "\n".join(problems[:40])
