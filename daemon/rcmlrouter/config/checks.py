"""Validation of a loaded configuration: every problem is appended to one list (nothing raises)."""

from __future__ import annotations

import ipaddress
import re

from rcmlrouter.config.model import (
    OBSOLETE_CLIENTS,
    Config,
    SipConfig,
    SmsConfig,
    parse_host_port,
    parse_port_range,
    parse_sip_listen,
)

MIN_RECORDS_AGE = 60.0  # seconds


def validate(config: Config, problems: list[str]) -> None:
    if parse_host_port(config.api.listen) is None:
        problems.append(f"api.listen: expected HOST:PORT, got {config.api.listen!r}")
    for item in config.sip.listen:
        parsed = parse_sip_listen(item)
        if parsed is None:
            problems.append(f"sip.listen: expected udp|tcp|tls:HOST:PORT, got {item!r}")
        elif parsed[1] in ("0.0.0.0", "::") and not config.sip.advertise:  # noqa: S104
            problems.append(
                f"sip.advertise: required when listening on a wildcard address ({item}): the "
                "address peers must use in Via and Contact"
            )
    if not config.sip.listen:
        problems.append("sip.listen: at least one address is required")
    url = config.store.url
    if not (url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://"))):
        problems.append(f"store.url: expected sqlite:///PATH or postgresql://…, got {url!r}")
    if config.routing.dialed_from not in ("to", "request-uri"):
        problems.append("routing.dialed_from: expected 'to' or 'request-uri'")
    if len(config.routing.default_region) != 2:
        problems.append("routing.default_region: expected a two-letter region code such as US")
    for key in ("connect_timeout", "read_timeout", "total_timeout"):
        if getattr(config.webhooks, key) <= 0:
            problems.append(f"webhooks.{key}: must be positive")
    streams = config.streams
    if streams.connect_timeout <= 0 or streams.buffer_seconds <= 0:
        problems.append("streams.connect_timeout / buffer_seconds: must be positive")
    if streams.send_queue < 10 or streams.max_message < 4096 or streams.max_per_call < 1:
        problems.append("streams.send_queue >= 10, max_message >= 4096, max_per_call >= 1")
    if config.media.idle_keepalive < 0:
        problems.append("media.idle_keepalive: must be >= 0 (0: no silence suppression)")
    if config.webhooks.client not in ("", *OBSOLETE_CLIENTS):
        problems.append(
            "webhooks.client: obsolete key (one HTTP client serves webhooks, callbacks and "
            "<Play>); remove it"
        )
    for cidr in config.webhooks.deny_networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"webhooks.deny_networks: not a network (CIDR): {cidr!r}")
    if config.api.auth_fail_limit < 1 or config.api.auth_fail_window <= 0:
        problems.append("api.auth_fail_limit / auth_fail_window: must be positive")
    if config.api.token_grace < 0:
        problems.append("api.token_grace: must be 0 or more seconds")
    if config.console.session_timeout <= 0:
        problems.append("console.session_timeout: must be a positive number of seconds")
    if config.log.format not in ("json", "console", "auto"):
        problems.append("log.format: expected 'json', 'console' or 'auto'")
    if config.log.level.lower() not in ("debug", "info", "warning", "error", "critical"):
        problems.append("log.level: expected debug, info, warning, error or critical")
    if config.callbacks.max_age <= 0:
        problems.append("callbacks.max_age: must be positive")
    if config.records.max_age != 0 and config.records.max_age < MIN_RECORDS_AGE:
        problems.append(
            f"records.max_age: 0 (keep forever) or at least {MIN_RECORDS_AGE:g} seconds (a "
            "message's record must outlive its 32 s dedupe window and its sending)"
        )
    if config.numbers.recycle_after < 0:
        problems.append("numbers.recycle_after: must not be negative")
    media = config.media
    try:  # bound per call without a name lookup, and written into SDP as it is
        ipaddress.ip_address(media.rtp_address)
    except ValueError:
        problems.append(f"media.rtp_address: expected an IP address, got {media.rtp_address!r}")
    if media.rtp_port_min or media.rtp_port_max:
        if not 0 < media.rtp_port_min < media.rtp_port_max <= 65535:
            problems.append("media.rtp_port_min/rtp_port_max: expected 0 < min < max <= 65535")
    else:
        try:
            parse_port_range(media.rtp_ports)
        except ValueError as exc:
            problems.append(f"media.rtp_ports: {exc}")
    if config.sip.max_transactions < 1 or config.sip.max_calls < 1:
        problems.append("sip.max_transactions and sip.max_calls must be at least 1")
    if config.sip.overload_lag < 0:
        problems.append("sip.overload_lag must be 0 (off) or a positive number of seconds")
    _validate_sip_security(config.sip, problems)
    _validate_sms(config.sms, problems)
    if config.cluster.lease <= 0 or config.cluster.version_check <= 0:
        problems.append("cluster.lease and cluster.version_check: must be positive")
    _validate_trunks(config, problems)
    _validate_outbound(config, problems)


def _validate_outbound(config: Config, problems: list[str]) -> None:
    outbound = config.outbound
    if outbound.cps <= 0:
        problems.append("outbound.cps: must be positive (calls per second per account)")
    if outbound.max_queued < 1:
        problems.append("outbound.max_queued: must be at least 1")
    if outbound.caller_id not in ("account", "any"):
        problems.append("outbound.caller_id: expected 'account' or 'any'")
    for trunk in config.trunks:
        if trunk.cps < 0:
            problems.append(f"trunks.{trunk.name}.cps: must be 0 (no limit) or positive")


def _validate_sip_security(sip: SipConfig, problems: list[str]) -> None:
    for cidr in sip.trusted:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"sip.trusted: not a network (CIDR): {cidr!r}")
    if sip.untrusted not in ("reject", "drop"):
        problems.append("sip.untrusted: expected 'reject' or 'drop'")
    if sip.flood_limit < 0 or sip.flood_window <= 0:
        problems.append("sip.flood_limit: 0 (off) or more; sip.flood_window: positive")
    tls = any(item.lower().startswith("tls:") for item in sip.listen)
    if tls and not (sip.tls_cert and sip.tls_key):
        problems.append("sip.tls_cert and sip.tls_key: required by a tls: listener")
    if sip.tls_verify_client and not sip.tls_ca:
        problems.append("sip.tls_ca: required by tls_verify_client (the CAs clients present)")
    limits = (sip.tcp_idle_timeout, sip.tcp_header_timeout)
    if min(*limits, sip.tcp_max_connections, sip.tcp_max_per_source) < 0:
        problems.append("sip.tcp_*: must not be negative (0 turns a limit off)")


_SMS_GATEWAY = re.compile(
    r"sips?:(?:[^@;\s]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?"
    r"(;[^\s]*)?\Z"
)


def _validate_sms(sms: SmsConfig, problems: list[str]) -> None:
    if sms.gateway:
        match = _SMS_GATEWAY.match(sms.gateway)
        params = (match.group(3) or "").lower() if match else ""
        transport = re.search(r";transport=([^;]*)", params)
        if match is None or (match.group(2) and int(match.group(2)) > 65535):
            problems.append(
                f"sms.gateway: expected sip:HOST[:PORT][;transport=udp|tcp], got {sms.gateway!r}"
            )
        elif transport and transport.group(1) not in ("udp", "tcp"):
            problems.append(
                f"sms.gateway: transport must be udp or tcp, got {transport.group(1)!r}"
            )
    if bool(sms.username) != bool(sms.password):
        problems.append("sms.username and sms.password: set both or neither")
    if sms.timeout <= 0:
        problems.append("sms.timeout: must be positive")


def _validate_trunks(config: Config, problems: list[str]) -> None:
    names = [trunk.name for trunk in config.trunks]
    for trunk in config.trunks:
        label = f"trunks.{trunk.name}" if trunk.name else "trunks"
        if not trunk.name:
            problems.append("trunks: every trunk needs a name")
        match = _SMS_GATEWAY.match(trunk.uri)
        if match is None or "@" in trunk.uri or (match.group(2) and int(match.group(2)) > 65535):
            problems.append(f"{label}.uri: expected sip:HOST[:PORT], got {trunk.uri!r}")
        if trunk.transport not in ("udp", "tcp"):
            problems.append(f"{label}.transport: expected 'udp' or 'tcp'")
        if trunk.number_format not in ("e164", "national"):
            problems.append(f"{label}.number_format: expected 'e164' or 'national'")
        if bool(trunk.username) != bool(trunk.password):
            problems.append(f"{label}.username and password: set both or neither")
    if len(set(names)) != len(names):
        problems.append("trunks: names must be unique")
    if config.dial.default_trunk and config.dial.default_trunk not in names:
        problems.append(f"dial.default_trunk: no trunk named {config.dial.default_trunk!r}")
    _validate_failover(config, problems)


def _validate_failover(config: Config, problems: list[str]) -> None:
    """Each ``failover`` names another trunk, and no chain comes back to where it started."""
    failover = {trunk.name: trunk.failover for trunk in config.trunks}
    for trunk in config.trunks:
        label = f"trunks.{trunk.name}"
        if trunk.failover_timeout < 0:
            problems.append(f"{label}.failover_timeout: must be 0 (Timer B only) or positive")
        if not trunk.failover:
            continue
        if trunk.failover not in failover:
            problems.append(f"{label}.failover: no trunk named {trunk.failover!r}")
            continue
        path = [trunk.name]
        while (nxt := failover.get(path[-1], "")) and nxt not in path:
            path.append(nxt)
        if nxt == trunk.name:
            cycle = " -> ".join([*path, trunk.name])
            problems.append(f"{label}.failover: the chain comes back to {trunk.name!r} ({cycle})")
