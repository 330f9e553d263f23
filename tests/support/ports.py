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


def free_rtp_port(host: str = "127.0.0.1") -> int:
    """An even UDP port whose odd neighbour is free too (RTP + RTCP) on ``host``."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1] & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
                a.bind((host, port))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                    b.bind((host, port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free RTP port pair")


def free_port_range(
    count: int, host: str = "127.0.0.1", *, low: int = 20000, high: int = 32700
) -> int:
    """The first of ``count`` consecutive UDP ports, none held now, starting at an even port in
    ``[low, high)``, below the kernel's ephemeral range (where RTP ranges live; nothing picks
    them by chance)."""
    rng = random.Random()
    for _ in range(100):
        first = rng.randrange(low, high - count, 2)
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                held.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                held[-1].bind((host, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError(f"no {count} free consecutive ports")


def sipp_media_port(host: str = "127.0.0.1") -> int:
    """A ``-mp`` port for SIPp: it binds audio at the port and video at port + 2 (RTCP beside
    each), so four consecutive free ports, below the daemons' default RTP range (20000-29999)
    and below the ephemeral range, where other tests' sockets come and go."""
    return free_port_range(4, host, low=11000, high=19996)
