"""Free loopback ports."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (SIP listens on both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp, socket.socket(family) as tcp:
                udp.bind((host, port))
                tcp.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")
