"""Configuration: one TOML file parsed once into frozen, typed dataclasses (``model``), loaded
with environment overrides (``load``) and validated with every problem reported together
(``checks``); only the CLI turns a :class:`~rcmlrouter.errors.ConfigError` into an exit status.
"""

from rcmlrouter.config.load import load_config
from rcmlrouter.config.model import (
    ENV_PREFIX,
    MULTI_TENANT_DENY,
    ApiConfig,
    CallbacksConfig,
    ClusterConfig,
    Config,
    ConsoleConfig,
    DataConfig,
    DialConfig,
    LogConfig,
    MediaConfig,
    NumbersConfig,
    RecordsConfig,
    RoutingConfig,
    SipConfig,
    SmsConfig,
    StoreConfig,
    TrunkConfig,
    WebhooksConfig,
    parse_host_port,
    parse_port_range,
    parse_sip_listen,
    sqlite_path,
)

__all__ = [
    "ENV_PREFIX",
    "MULTI_TENANT_DENY",
    "ApiConfig",
    "CallbacksConfig",
    "ClusterConfig",
    "Config",
    "ConsoleConfig",
    "DataConfig",
    "DialConfig",
    "LogConfig",
    "MediaConfig",
    "NumbersConfig",
    "RecordsConfig",
    "RoutingConfig",
    "SipConfig",
    "SmsConfig",
    "StoreConfig",
    "TrunkConfig",
    "WebhooksConfig",
    "load_config",
    "parse_host_port",
    "parse_port_range",
    "parse_sip_listen",
    "sqlite_path",
]
