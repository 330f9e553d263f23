"""What one log line costs: the daemon's ``call.completed`` line, rendered and written to a pipe.

Run: .venv/bin/python tests/bench/log_bench.py [--lines 50000] [--rounds 5]

Each variant runs in a child process whose stdout is a pipe drained by this process (as
journald or a supervisor drains the daemon's). A call binds ``call_sid`` with structlog's
contextvars, logs ``call.completed`` with the daemon's ten fields, and unbinds (exactly what
``calls/context.py`` does); CPU µs per call is the child's process time over the loop, median
of the rounds. Variants:

- ``shipped``: ``logconfig.configure_logging("info", "json")`` as the daemon runs it;
- ``json+print``: the configuration before (stdlib ``json`` renderer, ``TimeStamper``,
  ``PrintLogger`` with a flush per line), rebuilt here for the same-run baseline;
- ``warning``: the shipped configuration at level ``warning`` (the line is filtered);
- ``no line``: bind and unbind only (the floor).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("json+print", "shipped", "warning", "no line")


def child(variant: str, lines: int) -> None:
    sys.path.insert(0, str(REPO / "daemon"))
    import structlog

    from rcmlrouter.logconfig import configure_logging, redact_secrets

    if variant == "json+print":
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                redact_secrets,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
            cache_logger_on_first_use=True,
        )
    else:
        configure_logging("warning" if variant == "warning" else "info", "json")
    log = structlog.get_logger("rcmlrouter.calls")
    emit = variant != "no line"
    bind, unbind = structlog.contextvars.bind_contextvars, structlog.contextvars.unbind_contextvars
    started = time.process_time()
    for index in range(lines):
        bind(call_sid=f"CA{index:032x}")
        if emit:
            log.info(
                "call.completed", outcome="no-answer", call_status="no-answer",
                match_kind="exact", number_sid="PN0123456789abcdef0123456789abcdef",
                dialed="5550000123", sip_status=603, end_cause="reject", duration=0.012,
                used_fallback=False,
            )  # fmt: skip
        unbind("call_sid")
    elapsed = time.process_time() - started
    print(f"{1e6 * elapsed / lines:.3f}", file=sys.stderr)


def measure(variant: str, lines: int) -> tuple[float, int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", variant, "--lines", str(lines)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    written = sum(len(chunk) for chunk in iter(lambda: proc.stdout.read(1 << 16), b""))  # type: ignore[union-attr]
    _, err = proc.communicate()
    return float(err.decode().strip().splitlines()[-1]), written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.lines)
        return
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):
        for variant in VARIANTS:  # interleaved: machine noise hits every variant
            micros, written = measure(variant, args.lines)
            results[variant].append(micros)
            sizes[variant] = written
    base = statistics.median(results["json+print"])
    print(f"{args.lines:,} calls a round, {args.rounds} rounds, medians\n")
    print("| variant | CPU µs per call | × before | bytes per line |")
    print("|---|---:|---:|---:|")
    for variant in VARIANTS:
        median = statistics.median(results[variant])
        print(
            f"| {variant} | {median:.2f} | {median / base:.2f} "
            f"| {sizes[variant] / args.lines:.0f} |"
        )


if __name__ == "__main__":
    main()
