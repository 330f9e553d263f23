"""Prometheus metrics, served by the API at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS_TOTAL = Counter(
    "rcmlrouter_calls_total",
    "Calls handled, by outcome and match kind.",
    ["outcome", "match_kind"],
    registry=REGISTRY,
)
CALLS_ACTIVE = Gauge("rcmlrouter_calls_active", "Calls in progress.", registry=REGISTRY)
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
ROUTING_NUMBERS = Gauge(
    "rcmlrouter_routing_numbers", "Numbers in the routing snapshot.", registry=REGISTRY
)
