"""Prometheus metrics, served by the API at ``/metrics``.

Besides the metrics the components update, two are computed when scraped: the asyncio task count
of the loop that serves ``/metrics`` and the cycle collector's pause times, which a
``gc.callbacks`` hook accumulates in plain numbers (no lock is taken inside a collection).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS_TOTAL = Counter(
    "rcmlrouter_calls_total",
    "Calls handled, by outcome and match kind.",
    ["outcome", "match_kind"],
    registry=REGISTRY,
)
CALLS_ACTIVE = Gauge("rcmlrouter_calls_active", "Calls in progress.", registry=REGISTRY)
STREAMS_ACTIVE = Gauge(
    "rcmlrouter_streams_active", "Media streams connected to agents.", registry=REGISTRY
)
STREAMS_TOTAL = Counter(
    "rcmlrouter_streams_total",
    "Media streams ended: outcome stopped, or the 319xx error code of a stream-error.",
    ["outcome"],
    registry=REGISTRY,
)
STREAM_FRAMES_DROPPED = Counter(
    "rcmlrouter_stream_frames_dropped_total",
    "20 ms frames the overflow policies dropped: to_agent (a slow agent), from_agent (audio past "
    "[streams] buffer_seconds).",
    ["direction"],
    registry=REGISTRY,
)
CONFERENCES_ACTIVE = Gauge(
    "rcmlrouter_conferences_active", "Conferences live on this node.", registry=REGISTRY
)
CONFERENCE_PARTICIPANTS = Gauge(
    "rcmlrouter_conference_participants", "Participants in this node's rooms.", registry=REGISTRY
)
CONFERENCE_MIXED = Gauge(
    "rcmlrouter_conference_mixed_legs", "Participants the mixer sends to each tick.",
    registry=REGISTRY,
)  # fmt: skip
CONFERENCE_TICK_SECONDS = Histogram(
    "rcmlrouter_conference_tick_seconds",
    "CPU time of one mixer tick (every room of the process: decode, mix, encode, send).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02),
    registry=REGISTRY,
)
MESSAGES_TOTAL = Counter(
    "rcmlrouter_messages_total",
    "Inbound SIP MESSAGEs processed (their webhook run), by final status.",
    ["status"],
    registry=REGISTRY,
)
API_MESSAGES_TOTAL = Counter(
    "rcmlrouter_api_messages_total",
    "Messages created through POST Messages that ended, by final status (sent, failed).",
    ["status"],
    registry=REGISTRY,
)
TRUNK_FAILOVERS = Counter(
    "rcmlrouter_trunk_failovers_total",
    "Tries of a dialled number that failed over to the next trunk of the chain, by the trunk "
    "that could not take the call and why (no-response: nothing by its failover_timeout or "
    "Timer B; transport: refused, unreachable; 408, 500, 502, 503, 504: its answer).",
    ["trunk", "reason"],
    registry=REGISTRY,
)

API_CALLS_QUEUED = Gauge(
    "rcmlrouter_api_calls_queued",
    "Calls created through POST Calls waiting for their pacing slot in this process.",
    registry=REGISTRY,
)
API_MESSAGES_WAITING = Gauge(
    "rcmlrouter_api_messages_waiting",
    "Messages created through POST Messages waiting to be sent or being sent in this process.",
    registry=REGISTRY,
)
CALL_UPDATES = Counter(
    "rcmlrouter_call_updates_total",
    "Live call updates (POST Calls/{CA}) taken by this node, by where the call ran (local, "
    "remote) and outcome (applied, ignored, ended, unreachable, invalid, unsupported).",
    ["route", "outcome"],
    registry=REGISTRY,
)
CALL_UPDATE_SECONDS = Histogram(
    "rcmlrouter_call_update_seconds",
    "Time to apply a live call update, from this node (remote: the node that runs the call "
    "answered); a hang-up includes the call's end and its final record.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
WEBHOOK_SECONDS = Histogram(
    "rcmlrouter_webhook_seconds",
    "RCML fetch latency.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
    registry=REGISTRY,
)
WEBHOOK_FAILURES = Counter(
    "rcmlrouter_webhook_failures_total",
    "Failed RCML fetches by error code.",
    ["error_code"],
    registry=REGISTRY,
)
CALLBACKS_SENT = Counter(
    "rcmlrouter_callbacks_sent_total", "Status callbacks delivered.", registry=REGISTRY
)
CALLBACKS_FAILED = Counter(
    "rcmlrouter_callbacks_failed_attempts_total",
    "Failed status callback attempts.",
    registry=REGISTRY,
)
CALLBACKS_PENDING = Gauge(
    "rcmlrouter_callbacks_pending", "Status callbacks waiting in the outbox.", registry=REGISTRY
)
CALLBACKS_EXPIRED = Counter(
    "rcmlrouter_callbacks_expired_total",
    "Status callbacks given up undelivered after callbacks.max_age.",
    registry=REGISTRY,
)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
JOURNAL_COMMIT_SECONDS = Histogram(
    "rcmlrouter_journal_commit_seconds",
    "From CallbackOutbox.commit to its transaction committed (what a ringing call waits).",
    buckets=COMMIT_BUCKETS,
    registry=REGISTRY,
)
STORE_BATCH_SECONDS = Histogram(
    "rcmlrouter_store_batch_seconds",
    "One group-committed store write (a BatchWriter batch), by writer.",
    ["writer"],
    buckets=COMMIT_BUCKETS,
    registry=REGISTRY,
)
STORE_BATCH_ITEMS = Histogram(
    "rcmlrouter_store_batch_items",
    "Items per group-committed store write, by writer.",
    ["writer"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
CALLBACKS_OLDEST_AGE = Gauge(
    "rcmlrouter_callbacks_oldest_age_seconds",
    "Age of the oldest status callback waiting in the outbox (0 when none is).",
    registry=REGISTRY,
)
RECORDS_PRUNED = Counter(
    "rcmlrouter_records_pruned_total",
    "Records deleted by retention ([records] max_age), by kind (recordings with their files).",
    ["kind"],
    registry=REGISTRY,
)
RECORDS_PRUNE_SECONDS = Histogram(
    "rcmlrouter_records_prune_batch_seconds",
    "One retention batch (a transaction deleting up to a batch of the oldest records).",
    buckets=COMMIT_BUCKETS,
    registry=REGISTRY,
)
ROUTING_NUMBERS = Gauge(
    "rcmlrouter_routing_numbers", "Numbers in the routing snapshot.", registry=REGISTRY
)


def _running_tasks() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # scraped outside the event loop (tests)
        return 0.0


ASYNCIO_TASKS = Gauge(
    "rcmlrouter_asyncio_tasks", "asyncio tasks alive in the daemon's loop.", registry=REGISTRY
)
ASYNCIO_TASKS.set_function(_running_tasks)

PYTHON_BLOCKS = Gauge(
    "rcmlrouter_python_allocated_blocks",
    "Memory blocks held by the Python allocator (sys.getallocatedblocks): the Python heap "
    "without SQLite's page cache or the allocator's free lists.",
    registry=REGISTRY,
)
PYTHON_BLOCKS.set_function(lambda: float(sys.getallocatedblocks()))

GC_PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, int]]:
    """Per-bucket counts (``+Inf`` last) as the cumulative buckets of a histogram family."""
    cumulative, buckets = 0, []
    for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    return buckets


class GcPauses(Collector):
    """Pause time of every cycle collection, per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self._started = 0.0
        self.counts = [[0] * (len(GC_PAUSE_BUCKETS) + 1) for _ in range(3)]
        self.sums = [0.0, 0.0, 0.0]
        self.collected = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = int(info.get("generation", 2))
        index = next(
            (i for i, bound in enumerate(GC_PAUSE_BUCKETS) if pause <= bound), len(GC_PAUSE_BUCKETS)
        )
        self.counts[generation][index] += 1
        self.sums[generation] += pause
        self.collected[generation] += int(info.get("collected", 0))
        self.longest[generation] = max(self.longest[generation], pause)

    def collect(self) -> Iterator[Any]:
        pauses = HistogramMetricFamily(
            "rcmlrouter_gc_pause_seconds",
            "Cycle collector pauses (the whole process stops), by generation.",
            labels=["generation"],
        )
        longest = GaugeMetricFamily(
            "rcmlrouter_gc_pause_max_seconds",
            "Longest cycle collector pause since start, by generation.",
            labels=["generation"],
        )
        collected = CounterMetricFamily(
            "rcmlrouter_gc_collected_objects",
            "Unreachable objects freed by the cycle collector, by generation.",
            labels=["generation"],
        )
        for generation in range(3):
            label = [str(generation)]
            buckets = _cumulative(GC_PAUSE_BUCKETS, self.counts[generation])
            pauses.add_metric(label, buckets, self.sums[generation])
            longest.add_metric(label, self.longest[generation])
            collected.add_metric(label, self.collected[generation])
        yield pauses
        yield longest
        yield collected


class SipSecurity(Collector):
    """SIP guard verdicts, TCP/TLS connection limits and malformed input, read at scrape time
    from ``source`` (the endpoint's ``security_stats``): nothing on the packet path."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[str, float]] | None = None

    def collect(self) -> Iterator[Any]:
        stats = self.source() if self.source is not None else {}
        guard = CounterMetricFamily(
            "rcmlrouter_sip_guard_requests",
            "Requests refused or dropped before parsing: untrusted source, flood limit.",
            labels=["verdict"],
        )
        for verdict in ("untrusted_rejected", "untrusted_dropped", "flood_rejected"):
            guard.add_metric([verdict], stats.get(verdict, 0))
        guard.add_metric(["flood_dropped"], stats.get("flood_dropped", 0))
        closed = CounterMetricFamily(
            "rcmlrouter_sip_connections_closed",
            "TCP/TLS connections closed by a limit: refused (per source / total), idle, slow "
            "(partial message too old), framing (unframeable input).",
            labels=["reason"],
        )
        for reason in ("refused", "idle_closed", "slow_closed", "framing_closed"):
            closed.add_metric([reason.removesuffix("_closed")], stats.get(reason, 0))
        yield guard
        yield closed
        yield GaugeMetricFamily(
            "rcmlrouter_sip_guard_sources",
            "Source addresses the flood guard remembers.",
            value=stats.get("guard_sources", 0),
        )
        yield GaugeMetricFamily(
            "rcmlrouter_sip_connections",
            "Accepted TCP/TLS connections open.",
            value=stats.get("connections", 0),
        )
        yield CounterMetricFamily(
            "rcmlrouter_sip_calls_ended_by_connection",
            "Calls ended because the TCP/TLS connection they came on closed.",
            value=stats.get("calls_ended_by_connection", 0),
        )
        yield CounterMetricFamily(
            "rcmlrouter_sip_overload_rejected",
            "New INVITEs answered 503 + Retry-After because the endpoint was overloaded.",
            value=stats.get("rejected_overload", 0),
        )
        yield CounterMetricFamily(
            "rcmlrouter_sip_parse_errors",
            "Malformed SIP messages and datagrams (answered 4xx/5xx where possible).",
            value=stats.get("parse_errors", 0),
        )
        yield CounterMetricFamily(
            "rcmlrouter_sip_rejected_overload",
            "New INVITEs answered 503 + Retry-After: overloaded (shed), draining, or at the "
            "transaction limit.",
            value=stats.get("rejected_overload", 0),
        )


class LoopLagCollector(Collector):
    """How late the event loop ran the endpoint's 10 ms heartbeat: every SIP message, webhook
    response and call step waits this long, on top of its own work. Read at scrape time from
    ``source`` (the endpoint's ``LoopLag``: bucket bounds, counts with +Inf last, sum)."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[Sequence[float], Sequence[int], float]] | None = None

    def collect(self) -> Iterator[Any]:
        if self.source is None:
            return
        bounds, counts, total = self.source()
        family = HistogramMetricFamily(
            "rcmlrouter_loop_lag_seconds",
            "Lateness of the event loop's 10 ms heartbeat (GC pauses and saturation show here).",
        )
        family.add_metric([], _cumulative(bounds, counts), total)
        yield family


class RtpPortsCollector(Collector):
    """The RTP port pool, read at scrape time from ``source`` (in use, busy, busy found)."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[int, int, int, int]] | None = None

    def collect(self) -> Iterator[Any]:
        if self.source is None:
            return
        size, in_use, busy, busy_found = self.source()
        yield GaugeMetricFamily(
            "rcmlrouter_rtp_ports", "Even RTP ports in the configured range.", value=size
        )
        yield GaugeMetricFamily(
            "rcmlrouter_rtp_ports_in_use", "RTP ports bound by this process's calls.", value=in_use
        )
        yield GaugeMetricFamily(
            "rcmlrouter_rtp_ports_busy",
            "RTP ports skipped for now because another process held them at the last try.",
            value=busy,
        )
        yield CounterMetricFamily(
            "rcmlrouter_rtp_ports_busy_found",
            "Bind attempts that found the port (or its odd neighbour) held by another process.",
            value=busy_found,
        )


RTP_PORTS = RtpPortsCollector()
REGISTRY.register(RTP_PORTS)

LOOP_LAG = LoopLagCollector()
REGISTRY.register(LOOP_LAG)

SIP_SECURITY = SipSecurity()
REGISTRY.register(SIP_SECURITY)

GC_PAUSES = GcPauses()
gc.callbacks.append(GC_PAUSES.on_gc)
REGISTRY.register(GC_PAUSES)
