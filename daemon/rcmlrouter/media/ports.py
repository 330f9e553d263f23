"""RTP port allocation from the configured range (even ports; RTCP would take the odd one)."""

from __future__ import annotations


class RtpPortPool:
    """Hands out even ports in ``[low, high)``, round-robin, skipping the ones in use."""

    def __init__(self, low: int, high: int) -> None:
        first = low + (low % 2)
        self._ports = list(range(first, high - 1, 2))
        if not self._ports:
            raise ValueError(f"no even port in [{low}, {high})")
        self._next = 0
        self._in_use: set[int] = set()

    def acquire(self) -> int:
        """A free port; raises LookupError when every port is in use."""
        for _ in range(len(self._ports)):
            port = self._ports[self._next]
            self._next = (self._next + 1) % len(self._ports)
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise LookupError("every RTP port is in use")

    def release(self, port: int) -> None:
        self._in_use.discard(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)
