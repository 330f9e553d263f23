"""The open-file limit (openfiles.py): raised from soft to hard at start-up, and how many calls
with media it holds (two sockets a call)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

from rcmlrouter.openfiles import RESERVED, OpenFilesBudget

PROBE = """
import json, resource
from rcmlrouter.openfiles import raise_open_files_limit
budget = raise_open_files_limit()
print(json.dumps([budget.soft, budget.hard, budget.raised_from,
                  resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def lowered_soft_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        preexec_fn=lowered_soft_limit,
        capture_output=True,
        text=True,
        check=True,
    )
    soft_now, hard_now, raised_from, in_force = json.loads(out.stdout)
    expected = hard if hard != resource.RLIM_INFINITY else 1_048_576
    assert (raised_from, soft_now, in_force, hard_now) == (256, expected, expected, hard)


def test_two_sockets_per_call_with_media() -> None:
    assert OpenFilesBudget(20_000, 20_000, 20_000).calls_with_media() == (20_000 - RESERVED) // 2
    assert OpenFilesBudget(100, 100, 100).calls_with_media() == 0
