"""Free loopback ports."""

from __future__ import annotations

import random
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


def free_port_range(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive UDP ports, none held now, starting at an even port
    below the kernel's ephemeral range (where RTP ranges live; nothing picks them by chance)."""
    rng = random.Random()
    for _ in range(100):
        low = rng.randrange(11000, 32700 - count, 2)
        held: list[socket.socket] = []
        try:
            for port in range(low, low + count):
                held.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                held[-1].bind((host, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return low
    raise RuntimeError(f"no {count} free consecutive ports")
