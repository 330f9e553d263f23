"""Configuration: one TOML file parsed once into frozen, typed dataclasses.

Every key may be overridden by an environment variable ``RCMLROUTER_<SECTION>_<KEY>`` (upper
case), which wins over the file. List values take the comma-separated form in the environment.
All problems are collected and raised together as one :class:`~rcmlrouter.errors.ConfigError`;
only the CLI turns that into an exit status.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from rcmlrouter.errors import ConfigError

ENV_PREFIX = "RCMLROUTER_"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    listen: str = "127.0.0.1:8080"
    public_url: str = ""  # base URL the API is reached at; default http://<listen>
    auth_fail_limit: int = 10  # failed authentications per address per window, then 429
    auth_fail_window: float = 60.0  # seconds
    token_grace: float = 86400.0  # seconds a rotated-out AuthToken still authenticates


@dataclass(frozen=True, slots=True)
class SipConfig:
    listen: tuple[str, ...] = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
    advertise: str = ""  # host for Via/Contact; required when listening on 0.0.0.0 or ::
    user_agent: str = "rcmlrouter"
    max_transactions: int = 20000
    max_calls: int = 20000
    drain_timeout: float = 30.0
    overload_lag: float = 0.025  # seconds the event loop runs late before INVITEs are shed
    trusted: tuple[str, ...] = ()  # CIDRs that may send requests; empty: every source
    untrusted: str = "reject"  # a request from elsewhere: "reject" (403) or "drop"
    flood_limit: int = 0  # requests per flood_window per source address (not trusted); 0: off
    flood_window: float = 1.0
    tls_cert: str = ""  # PEM certificate chain and key for tls: listeners
    tls_key: str = ""
    tls_ca: str = ""  # PEM CAs: client certificates (tls_verify_client), our TLS connections
    tls_verify_client: bool = False
    tcp_idle_timeout: float = 300.0  # TCP/TLS connection without traffic nor calls: closed
    tcp_header_timeout: float = 10.0  # a partial message this old closes its connection
    tcp_max_connections: int = 4096  # accepted TCP/TLS connections, in total and per source
    tcp_max_per_source: int = 64


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = "sqlite:///var/rcmlrouter.db"


@dataclass(frozen=True, slots=True)
class DataConfig:
    dir: str = "var"


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    default_region: str = "US"
    dialed_from: str = "to"


# What ``[webhooks] multi_tenant = true`` denies when ``deny_networks`` is not set: the host
# itself, link-local (cloud metadata: 169.254.169.254, fd00:ec2::254), private and CGNAT ranges.
MULTI_TENANT_DENY = (
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "169.254.169.254/32",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "::/128",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
)


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 15.0
    pool_size: int = 200
    # CIDRs no webhook, callback or media URL may connect to (checked after DNS resolution)
    deny_networks: tuple[str, ...] = ()
    multi_tenant: bool = False  # tenants' URLs: deny_networks defaults to MULTI_TENANT_DENY

    @property
    def denied_networks(self) -> tuple[str, ...]:
        """``deny_networks``, or in multi-tenant mode when it is empty, ``MULTI_TENANT_DENY``."""
        if self.multi_tenant and not self.deny_networks:
            return MULTI_TENANT_DENY
        return self.deny_networks


@dataclass(frozen=True, slots=True)
class CallbacksConfig:
    workers: int = 8
    retry_initial: float = 1.0
    retry_max: float = 300.0
    max_age: float = 86400.0  # seconds after its creation an undelivered event is given up


@dataclass(frozen=True, slots=True)
class NumbersConfig:
    recycle_after: float = 0.0


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """RTP for the media verbs: ``rtp_ports = "20000-29999"`` (inclusive; SPEC §7). The older
    ``rtp_port_min`` / ``rtp_port_max`` pair (``min <= port < max``), when set, wins."""

    rtp_address: str = "127.0.0.1"
    rtp_ports: str = "20000-29999"
    rtp_port_min: int = 0
    rtp_port_max: int = 0

    @property
    def port_range(self) -> tuple[int, int]:
        """``(low, high)``, the ports ``low <= port < high``."""
        if self.rtp_port_min or self.rtp_port_max:
            return self.rtp_port_min, self.rtp_port_max
        low, high = parse_port_range(self.rtp_ports)
        return low, high + 1


def parse_port_range(text: str) -> tuple[int, int]:
    """``"20000-29999"`` → ``(20000, 29999)``; ValueError unless 1 <= low < high <= 65535."""
    low_text, dash, high_text = text.strip().partition("-")
    if not dash or not low_text.strip().isdigit() or not high_text.strip().isdigit():
        raise ValueError(f"expected LOW-HIGH such as 20000-29999, got {text!r}")
    low, high = int(low_text), int(high_text)
    if not 1 <= low < high <= 65535:
        raise ValueError(f"expected 1 <= LOW < HIGH <= 65535, got {text!r}")
    return low, high


@dataclass(frozen=True, slots=True)
class SmsConfig:
    """Outbound messages (``<Sms>`` / ``<Message>``) to phone numbers go to ``gateway``."""

    gateway: str = ""  # sip:HOST[:PORT][;transport=udp|tcp]; empty: phone numbers fail (21612)
    username: str = ""  # digest credentials for 401/407 challenges of the gateway
    password: str = ""
    timeout: float = 32.0  # seconds to wait for a final response (capped by Timer F, 64*T1)


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    """One outbound trunk (``[[trunks]]``): where ``<Dial><Number>`` calls go."""

    name: str = ""
    uri: str = ""  # sip:HOST[:PORT]; the dialed number becomes the user part
    transport: str = "udp"  # udp | tcp
    username: str = ""  # digest credentials answering the trunk's 401/407
    password: str = ""
    number_format: str = "e164"  # e164 (+14155550100) | national (4155550100 in the US)


@dataclass(frozen=True, slots=True)
class DialConfig:
    default_trunk: str = ""  # the [[trunks]] name numbers go to; empty: the first trunk


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Many nodes on one PostgreSQL store (ignored on SQLite, which is one node)."""

    node_id: str = ""  # unique per node and stable across restarts; default HOSTNAME:SIP_PORT
    lease: float = 10.0  # seconds without a heartbeat after which a node is dead
    version_check: float = 5.0  # seconds between change-feed version checks (the backstop)


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class Config:
    api: ApiConfig = field(default_factory=ApiConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    data: DataConfig = field(default_factory=DataConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    numbers: NumbersConfig = field(default_factory=NumbersConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    dial: DialConfig = field(default_factory=DialConfig)
    trunks: tuple[TrunkConfig, ...] = ()
    log: LogConfig = field(default_factory=LogConfig)

    def trunk(self, name: str = "") -> TrunkConfig | None:
        """The trunk called ``name``; by default ``dial.default_trunk`` or the first one."""
        wanted = name or self.dial.default_trunk
        for trunk in self.trunks:
            if not wanted or trunk.name == wanted:
                return trunk
        return None

    @property
    def api_base_url(self) -> str:
        return self.api.public_url.rstrip("/") or f"http://{self.api.listen}"


_SECTIONS: dict[str, Any] = {
    name: cls for name, cls in get_type_hints(Config).items() if name != "trunks"
}


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (TOML; None means defaults only), apply environment overrides, validate."""
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    env = os.environ if environ is None else environ
    sections: dict[str, Any] = {}
    for name in raw:
        if name not in _SECTIONS and name != "trunks":
            problems.append(f"unknown section [{name}]")
    sections["trunks"] = _build_trunks(raw.get("trunks", []), env, problems)
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            problems.append(f"[{name}] must be a table")
            values = {}
        sections[name] = _build_section(name, cls, values, env, problems)
    config = Config(**sections)  # keys that failed to parse keep their defaults here
    _validate(config, problems)
    if problems:
        raise ConfigError(problems)
    return config


def _build_section(
    name: str,
    cls: type[Any],
    values: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
    label: str | None = None,
) -> Any:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    label = label or name
    for key in values:
        if key not in hints:
            problems.append(f"unknown key {label}.{key}")
    for key, typ in hints.items():
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            raw_value: Any = env[env_name]
            source = f"${env_name}"
        elif key in values:
            raw_value = values[key]
            source = f"{label}.{key}"
        else:
            continue
        try:
            kwargs[key] = _coerce(raw_value, typ, from_env=source.startswith("$"))
        except (TypeError, ValueError) as exc:
            problems.append(f"{source}: {exc}")
    return cls(**kwargs)


def _build_trunks(raw: Any, env: Mapping[str, str], problems: list[str]) -> tuple[TrunkConfig, ...]:
    """``[[trunks]]``; ``RCMLROUTER_TRUNKS_<NAME>_<KEY>`` overrides a key of the trunk NAME
    (upper case, other characters than letters and digits as ``_``), e.g. its password; a
    ``RCMLROUTER_TRUNKS_<NAME>_URI`` for a name the file lacks defines the trunk ``<name>``."""
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append("trunks: expected [[trunks]] tables")
        return ()
    raw = list(raw)
    known = {_env_key(str(item.get("name", ""))) for item in raw}
    for variable in sorted(env):
        found = re.fullmatch(rf"{ENV_PREFIX}TRUNKS_(\w+)_URI", variable)
        if found and found.group(1) not in known:
            raw.append({"name": found.group(1).lower()})
    trunks = []
    for index, values in enumerate(raw):
        name = values.get("name")
        label = f"trunks.{name}" if isinstance(name, str) and name else f"trunks[{index}]"
        prefix = f"trunks_{_env_key(str(name or index))}"
        trunks.append(_build_section(prefix, TrunkConfig, values, env, problems, label))
    return tuple(trunks)


def _env_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _coerce(value: Any, typ: Any, *, from_env: bool) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"expected true or false, got {value!r}")
    if typ is int or typ is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, int | float) or (from_env and isinstance(value, str)):
            try:
                return typ(value)
            except ValueError:
                pass
        raise ValueError(f"expected {'an integer' if typ is int else 'a number'}, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")
    # tuple[str, ...]
    if isinstance(value, str) and from_env:
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


def _validate(config: Config, problems: list[str]) -> None:
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
    for cidr in config.webhooks.deny_networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"webhooks.deny_networks: not a network (CIDR): {cidr!r}")
    if config.api.auth_fail_limit < 1 or config.api.auth_fail_window <= 0:
        problems.append("api.auth_fail_limit / auth_fail_window: must be positive")
    if config.api.token_grace < 0:
        problems.append("api.token_grace: must be 0 or more seconds")
    if config.log.format not in ("json", "console", "auto"):
        problems.append("log.format: expected 'json', 'console' or 'auto'")
    if config.log.level.lower() not in ("debug", "info", "warning", "error", "critical"):
        problems.append("log.level: expected debug, info, warning, error or critical")
    if config.callbacks.max_age <= 0:
        problems.append("callbacks.max_age: must be positive")
    if config.numbers.recycle_after < 0:
        problems.append("numbers.recycle_after: must not be negative")
    media = config.media
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


def parse_host_port(value: str) -> tuple[str, int] | None:
    """Split ``HOST:PORT`` or ``[V6]:PORT``; None when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def parse_sip_listen(value: str) -> tuple[str, str, int] | None:
    """Split ``udp:HOST:PORT`` into (transport, host, port); None when malformed."""
    transport, sep, rest = value.partition(":")
    if not sep or transport.lower() not in ("udp", "tcp", "tls"):
        return None
    hp = parse_host_port(rest)
    return None if hp is None else (transport.lower(), hp[0], hp[1])


def sqlite_path(url: str) -> Path:
    """The file path of a ``sqlite:///PATH`` URL (relative paths are relative to the cwd)."""
    return Path(url.removeprefix("sqlite:///"))
