"""The configuration's frozen, typed dataclasses (one per TOML section) and the parsers of the
values they hold (host:port, SIP listen forms, port ranges, SQLite URLs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "RCMLROUTER_"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    listen: str = "127.0.0.1:8080"
    public_url: str = ""  # base URL the API is reached at; default http://<listen>
    auth_fail_limit: int = 10  # failed authentications per address per window, then 429
    auth_fail_window: float = 60.0  # seconds
    token_grace: float = 86400.0  # seconds a rotated-out AuthToken still authenticates


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """The operator console served by the API at ``/console/``."""

    enabled: bool = True
    session_timeout: float = 3600.0  # seconds a console session lasts without a request


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

    def own_host(self) -> str:
        """The host calls we place name as ours (From): ``advertise``, else the first listen
        address's host."""
        if self.advertise:
            return self.advertise
        listen = parse_sip_listen(self.listen[0]) if self.listen else None
        return listen[1] if listen else "127.0.0.1"


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


# ``[webhooks] client`` values of older files: accepted, ignored, warned about at start-up
OBSOLETE_CLIENTS = ("keepalive", "aiohttp")


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 15.0
    pool_size: int = 200
    # CIDRs no webhook, callback or media URL may connect to (checked after DNS resolution)
    deny_networks: tuple[str, ...] = ()
    multi_tenant: bool = False  # tenants' URLs: deny_networks defaults to MULTI_TENANT_DENY
    # obsolete: one HTTP client (rcmlrouter/httpclient) serves webhooks, callbacks and <Play>;
    # "keepalive" or "aiohttp" from an older file is accepted and ignored, with a warning
    client: str = ""

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
class RecordsConfig:
    """Retention of calls, messages, notifications and recordings (with their WAV files)."""

    # seconds after a call's end (a message's, notification's, recording's creation) that its
    # record is deleted; 0 keeps records forever. Default 30 days.
    max_age: float = 30 * 86400.0


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
    # seconds between silence packets while nothing plays (0: one every 20 ms, no suppression)
    idle_keepalive: float = 1.0

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
class StreamsConfig:
    """Media streams over WebSocket (``<Connect><Stream>``, ``<Start><Stream>``; SPEC §6)."""

    allow_insecure: bool = False  # ws:// (no TLS) URLs; off: only wss:// (tests use loopback)
    connect_timeout: float = 5.0  # seconds for TCP, TLS and the WebSocket handshake
    # seconds of agent audio buffered per stream; past it the newest audio is dropped
    buffer_seconds: float = 120.0
    send_queue: int = 500  # messages waiting for a slow agent; past it the oldest media go
    max_message: int = 1048576  # bytes in one message from the agent; larger closes (1009)
    max_per_call: int = 4  # streams one call may have open at once (Twilio's limit)


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
    cps: float = 0.0  # calls placed through the API per second on this trunk; 0: no limit
    failover: str = ""  # the [[trunks]] name a call goes to when this trunk cannot take it
    failover_timeout: float = 3.0  # seconds without any response before failover; 0: Timer B


@dataclass(frozen=True, slots=True)
class DialConfig:
    default_trunk: str = ""  # the [[trunks]] name numbers go to; empty: the first trunk


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """Calls placed through the API (``POST Accounts/{AC}/Calls``)."""

    cps: float = 10.0  # calls dialled per second per account (each trunk's cps applies too)
    max_queued: int = 10_000  # calls waiting for their slot in one process, then 429 (20429)
    caller_id: str = "account"  # From: "account" (one of the account's numbers) | "any"


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
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    data: DataConfig = field(default_factory=DataConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    numbers: NumbersConfig = field(default_factory=NumbersConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    streams: StreamsConfig = field(default_factory=StreamsConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    dial: DialConfig = field(default_factory=DialConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    trunks: tuple[TrunkConfig, ...] = ()
    log: LogConfig = field(default_factory=LogConfig)

    def trunk(self, name: str = "") -> TrunkConfig | None:
        """The trunk called ``name``; by default ``dial.default_trunk`` or the first one."""
        wanted = name or self.dial.default_trunk
        for trunk in self.trunks:
            if not wanted or trunk.name == wanted:
                return trunk
        return None

    def trunk_chain(self, first: TrunkConfig) -> tuple[TrunkConfig, ...]:
        """``first`` and the trunks its ``failover`` names lead to, in order (a loaded config
        has no unknown names and no cycle; a chain stops at either all the same)."""
        by_name = {trunk.name: trunk for trunk in self.trunks}
        chain = [first]
        while (nxt := by_name.get(chain[-1].failover)) is not None and nxt not in chain:
            chain.append(nxt)
        return tuple(chain)

    @property
    def api_base_url(self) -> str:
        return self.api.public_url.rstrip("/") or f"http://{self.api.listen}"


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
