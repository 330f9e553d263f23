"""The process's open-file limit (RLIMIT_NOFILE) against what the RTP range needs.

Every answered call holds two sockets (RTP on an even port, RTCP reserved on the odd one above),
so 10,000 calls with media need 20,000 file descriptors besides the daemon's own. At start-up
the soft limit is raised to the hard limit, as systemd advises services that need many
descriptors to do themselves (its default soft limit is 1,024; ``LimitNOFILE=`` sets the hard
one), and a warning says how many calls with media fit when the limit is below what the range
could hold. A call past the limit is answered ``503`` "out of file descriptors".
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Final

SOCKETS_PER_CALL: Final = 2  # RTP + RTCP
RESERVED: Final = 256  # the daemon's own: listeners, store, webhook connections, logs


@dataclass(frozen=True, slots=True)
class OpenFilesBudget:
    soft: int  # the limit now in force
    hard: int
    raised_from: int  # the soft limit the process started with

    def calls_with_media(self) -> int:
        """Answered calls whose RTP sockets fit under the limit."""
        return max(0, (self.soft - RESERVED) // SOCKETS_PER_CALL)


def raise_open_files_limit() -> OpenFilesBudget:
    """Raise the soft RLIMIT_NOFILE to the hard limit (never above it; an unlimited hard limit
    is capped at 1,048,576, the kernel's usual ``nr_open``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
        return OpenFilesBudget(target, hard, soft)
    return OpenFilesBudget(soft, hard, soft)
