"""Configuration: TOML + environment overrides, every problem reported at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rcmlrouter.config import MULTI_TENANT_DENY, load_config, parse_sip_listen
from rcmlrouter.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "rcmlrouter.example.toml"


def test_example_file_is_the_defaults() -> None:
    assert load_config(EXAMPLE, {}) == load_config(None, {})


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[api]\nlisten = "127.0.0.1:9000"\n[webhooks]\nconnect_timeout = 2.5\n')
    env = {
        "RCMLROUTER_API_LISTEN": "127.0.0.1:9100",
        "RCMLROUTER_SIP_LISTEN": "udp:127.0.0.1:5070, tcp:[::1]:5070",
        "RCMLROUTER_NUMBERS_RECYCLE_AFTER": "60",
    }
    config = load_config(path, env)
    assert config.api.listen == "127.0.0.1:9100"
    assert config.sip.listen == ("udp:127.0.0.1:5070", "tcp:[::1]:5070")
    assert config.webhooks.connect_timeout == 2.5
    assert config.numbers.recycle_after == 60.0


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[api]\nlisten = "nope"\nbogus = 1\n[routing]\ndialed_from = "from"\n[extra]\n'
        '[webhooks]\nread_timeout = "slow"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {"RCMLROUTER_LOG_FORMAT": "xml", "RCMLROUTER_SIP_MAX_CALLS": "x"})
    text = "\n".join(info.value.problems)
    for fragment in (
        "api.listen",
        "unknown key api.bogus",
        "routing.dialed_from",
        "unknown section [extra]",
        "webhooks.read_timeout",
        "log.format",
        "RCMLROUTER_SIP_MAX_CALLS",
    ):
        assert fragment in text
    assert len(info.value.problems) == 7


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[api\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, {})


def test_sip_listen_forms() -> None:
    assert parse_sip_listen("udp:127.0.0.1:5060") == ("udp", "127.0.0.1", 5060)
    assert parse_sip_listen("TCP:[::1]:5061") == ("tcp", "::1", 5061)
    assert parse_sip_listen("sctp:127.0.0.1:5060") is None
    assert parse_sip_listen("udp:127.0.0.1:99999") is None


def test_wildcard_listen_needs_an_advertised_address() -> None:
    env = {"RCMLROUTER_SIP_LISTEN": "udp:0.0.0.0:5060"}
    with pytest.raises(ConfigError, match=r"sip\.advertise"):
        load_config(None, env)
    config = load_config(None, {**env, "RCMLROUTER_SIP_ADVERTISE": "sip.example.net"})
    assert config.sip.advertise == "sip.example.net"


def test_sms_section_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[sms]\ngateway = "sip:gw.example.com:5080;transport=tcp"\nusername = "u"\n')
    config = load_config(path, {"RCMLROUTER_SMS_PASSWORD": "s3cret", "RCMLROUTER_SMS_TIMEOUT": "5"})
    assert config.sms.gateway == "sip:gw.example.com:5080;transport=tcp"
    assert (config.sms.username, config.sms.password, config.sms.timeout) == ("u", "s3cret", 5.0)
    env = {"RCMLROUTER_SMS_GATEWAY": "sip:127.0.0.1:5090"}
    assert load_config(None, env).sms.gateway == "sip:127.0.0.1:5090"
    assert load_config(None, {}).sms.gateway == ""


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"RCMLROUTER_SMS_GATEWAY": "gw.example.com"}, "sms.gateway: expected sip:HOST"),
        ({"RCMLROUTER_SMS_GATEWAY": "sip:gw:99999"}, "sms.gateway: expected sip:HOST"),
        ({"RCMLROUTER_SMS_GATEWAY": "sip:gw;transport=sctp"}, "transport must be udp or tcp"),
        ({"RCMLROUTER_SMS_USERNAME": "u"}, "set both or neither"),
        ({"RCMLROUTER_SMS_TIMEOUT": "0"}, "sms.timeout: must be positive"),
        ({"RCMLROUTER_MEDIA_IDLE_KEEPALIVE": "-1"}, "media.idle_keepalive: must be >= 0"),
        ({"RCMLROUTER_WEBHOOKS_CLIENT": "curl"}, "webhooks.client: obsolete key"),
    ],
)
def test_sms_section_problems(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(None, env)


@pytest.mark.parametrize("value", ["keepalive", "aiohttp"])
def test_an_older_files_webhooks_client_key_still_loads(tmp_path: Path, value: str) -> None:
    """One HTTP client now: the obsolete key is accepted (app.py warns at start-up), ignored."""
    path = tmp_path / "old.toml"
    path.write_text(f'[webhooks]\nclient = "{value}"\npool_size = 7\n')
    config = load_config(path, {})
    assert (config.webhooks.client, config.webhooks.pool_size) == (value, 7)
    assert load_config(None, {}).webhooks.client == ""


def test_trunks_and_dial_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[dial]\ndefault_trunk = "carrier"\n'
        '[[trunks]]\nname = "carrier"\nuri = "sip:trunk.example.net:5080"\nusername = "acct"\n'
        'password = "from-file"\nnumber_format = "national"\n'
        '[[trunks]]\nname = "backup"\nuri = "sip:10.0.0.2"\ntransport = "tcp"\n'
    )
    env = {
        "RCMLROUTER_TRUNKS_CARRIER_PASSWORD": "secret",
        "RCMLROUTER_TRUNKS_LAB_URI": "sip:127.0.0.1:5099",
    }
    config = load_config(path, env)
    carrier, backup, lab = config.trunks
    assert (carrier.name, carrier.uri, carrier.transport) == (
        "carrier",
        "sip:trunk.example.net:5080",
        "udp",
    )
    assert (carrier.username, carrier.password, carrier.number_format) == (
        "acct",
        "secret",
        "national",
    )
    assert (backup.transport, backup.number_format) == ("tcp", "e164")
    assert (lab.name, lab.uri) == ("lab", "sip:127.0.0.1:5099")
    assert config.trunk() is carrier and config.trunk("lab") is lab
    assert config.trunk("missing") is None
    assert load_config(None, {}).trunk() is None


def test_trunk_problems_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[dial]\ndefault_trunk = "nope"\n'
        '[[trunks]]\nname = "a"\nuri = "http://x"\ntransport = "sctp"\nnumber_format = "x"\n'
        'username = "u"\ncolour = "red"\n'
        '[[trunks]]\nname = "a"\nuri = "sip:h"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    text = "\n".join(info.value.problems)
    for fragment in (
        "trunks.a.uri",
        "trunks.a.transport",
        "trunks.a.number_format",
        "trunks.a.username and password",
        "unknown key trunks.a.colour",
        "trunks: names must be unique",
        "dial.default_trunk",
    ):
        assert fragment in text


def test_media_rtp_ports_and_the_older_pair(tmp_path: Path) -> None:
    assert load_config(None, {}).media.port_range == (20000, 30000)  # 20000-29999 inclusive
    path = tmp_path / "c.toml"
    path.write_text('[media]\nrtp_ports = "30000-30099"\n')
    assert load_config(path, {}).media.port_range == (30000, 30100)
    env = {"RCMLROUTER_MEDIA_RTP_PORTS": "40000-40009"}
    assert load_config(path, env).media.port_range == (40000, 40010)
    path.write_text("[media]\nrtp_port_min = 21000\nrtp_port_max = 22000\n")  # still accepted
    assert load_config(path, {}).media.port_range == (21000, 22000)


@pytest.mark.parametrize("ports", ["20000", "30000-20000", "0-100", "a-b", "20000-70000"])
def test_media_rtp_ports_problems(ports: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"RCMLROUTER_MEDIA_RTP_PORTS": ports})
    assert any(problem.startswith("media.rtp_ports:") for problem in info.value.problems)


@pytest.mark.parametrize("address", ["localhost", "media.example.com", "10.0.0.300", ""])
def test_media_rtp_address_must_be_an_ip_literal(address: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"RCMLROUTER_MEDIA_RTP_ADDRESS": address})
    assert any(problem.startswith("media.rtp_address:") for problem in info.value.problems)
    assert load_config(None, {"RCMLROUTER_MEDIA_RTP_ADDRESS": "::1"}).media.rtp_address == "::1"


def test_webhook_deny_networks_from_file_and_environment(tmp_path: Path) -> None:
    assert load_config(None, {}).webhooks.denied_networks == ()  # the demo: nothing denied
    path = tmp_path / "c.toml"
    path.write_text('[webhooks]\ndeny_networks = ["10.0.0.0/8", "fd00::/8"]\n')
    assert load_config(path, {}).webhooks.denied_networks == ("10.0.0.0/8", "fd00::/8")
    env = {"RCMLROUTER_WEBHOOKS_DENY_NETWORKS": "127.0.0.2/32, 192.168.0.0/16"}
    assert load_config(path, env).webhooks.denied_networks == ("127.0.0.2/32", "192.168.0.0/16")


def test_multi_tenant_denies_internal_networks_unless_told_otherwise() -> None:
    config = load_config(None, {"RCMLROUTER_WEBHOOKS_MULTI_TENANT": "true"})
    assert config.webhooks.denied_networks == MULTI_TENANT_DENY
    required = "127.0.0.0/8 169.254.0.0/16 169.254.169.254/32 10.0.0.0/8 172.16.0.0/12"
    for cidr in [*required.split(), "192.168.0.0/16", "100.64.0.0/10", "fe80::/10", "fc00::/7"]:
        assert cidr in MULTI_TENANT_DENY
    env = {
        "RCMLROUTER_WEBHOOKS_MULTI_TENANT": "1",
        "RCMLROUTER_WEBHOOKS_DENY_NETWORKS": "10.9.0.0/16",
    }
    assert load_config(None, env).webhooks.denied_networks == ("10.9.0.0/16",)


def test_bad_deny_networks_and_max_age_are_reported() -> None:
    env = {
        "RCMLROUTER_WEBHOOKS_DENY_NETWORKS": "10.0.0.0/8,intranet,10.0.0.0/33",
        "RCMLROUTER_CALLBACKS_MAX_AGE": "0",
    }
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    assert info.value.problems == [
        "webhooks.deny_networks: not a network (CIDR): 'intranet'",
        "webhooks.deny_networks: not a network (CIDR): '10.0.0.0/33'",
        "callbacks.max_age: must be positive",
    ]
    assert load_config(None, {"RCMLROUTER_CALLBACKS_MAX_AGE": "3600"}).callbacks.max_age == 3600


@pytest.mark.parametrize(
    ("value", "kept"), [("0", 0.0), ("60", 60.0), ("86400", 86400.0), ("59", None), ("-1", None)]
)
def test_records_max_age(value: str, kept: float | None) -> None:
    assert load_config(None, {}).records.max_age == 30 * 86400  # the default: 30 days
    env = {"RCMLROUTER_RECORDS_MAX_AGE": value}
    if kept is not None:
        assert load_config(None, env).records.max_age == kept
        return
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    assert info.value.problems == [
        "records.max_age: 0 (keep forever) or at least 60 seconds (a message's record must "
        "outlive its 32 s dedupe window and its sending)"
    ]


PRODUCTION = EXAMPLE.with_name("rcmlrouter.production.toml")


def test_sip_security_keys_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[sip]\nlisten = ["tls:127.0.0.1:5061"]\ntls_cert = "c.pem"\ntls_key = "k.pem"\n'
        'trusted = ["192.0.2.0/24"]\nuntrusted = "drop"\nflood_limit = 20\n'
    )
    env = {
        "RCMLROUTER_SIP_TRUSTED": "192.0.2.0/24, 2001:db8::/32",
        "RCMLROUTER_SIP_TCP_MAX_PER_SOURCE": "8",
    }
    sip = load_config(path, env).sip
    assert sip.trusted == ("192.0.2.0/24", "2001:db8::/32") and sip.untrusted == "drop"
    assert (sip.flood_limit, sip.flood_window, sip.tcp_max_per_source) == (20, 1.0, 8)
    assert parse_sip_listen("tls:[::1]:5061") == ("tls", "::1", 5061)


def test_sip_security_problems_are_reported_together() -> None:
    env = {
        "RCMLROUTER_SIP_LISTEN": "tls:127.0.0.1:5061",
        "RCMLROUTER_SIP_TRUSTED": "192.0.2.0/33",
        "RCMLROUTER_SIP_UNTRUSTED": "ignore",
        "RCMLROUTER_SIP_FLOOD_WINDOW": "0",
        "RCMLROUTER_SIP_TLS_VERIFY_CLIENT": "true",
        "RCMLROUTER_SIP_TCP_IDLE_TIMEOUT": "-1",
    }
    with pytest.raises(ConfigError) as info:
        load_config(None, env)
    text = "\n".join(info.value.problems)
    for fragment in (
        "sip.trusted",
        "sip.untrusted",
        "sip.flood_window",
        "sip.tls_cert",
        "sip.tls_ca",
        "sip.tcp_",
    ):
        assert fragment in text
    assert len(info.value.problems) == 6


def test_production_example_passes_check_config(tmp_path: Path) -> None:
    env = {**os.environ, "RCMLROUTER_TRUNKS_CARRIER_PASSWORD": "secret"}
    done = subprocess.run(
        [sys.executable, "-m", "rcmlrouter", "--config", str(PRODUCTION), "check-config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    config = load_config(PRODUCTION, {"RCMLROUTER_TRUNKS_CARRIER_PASSWORD": "secret"})
    assert config.sip.trusted and config.sip.untrusted == "drop" and config.webhooks.multi_tenant
    assert any(item.startswith("tls:") for item in config.sip.listen)


def test_trunk_failover_chain_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[trunks]]\nname = "first"\nuri = "sip:a.example.net"\nfailover = "second"\n'
        "failover_timeout = 2.5\n"
        '[[trunks]]\nname = "second"\nuri = "sip:b.example.net"\n'
    )
    env = {"RCMLROUTER_TRUNKS_SECOND_FAILOVER": "lab", "RCMLROUTER_TRUNKS_LAB_URI": "sip:127.0.0.1"}
    config = load_config(path, env)
    first, second, lab = config.trunks
    assert (first.failover, first.failover_timeout) == ("second", 2.5)
    assert (second.failover, second.failover_timeout) == ("lab", 3.0)  # the default
    assert (lab.failover, lab.failover_timeout) == ("", 3.0)
    assert config.trunk_chain(first) == (first, second, lab)
    assert config.trunk_chain(second) == (second, lab)
    assert config.trunk_chain(lab) == (lab,)
    alone = load_config(path, {})  # without the environment: second fails over nowhere
    assert [t.name for t in alone.trunk_chain(alone.trunks[0])] == ["first", "second"]


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        (
            {"RCMLROUTER_TRUNKS_A_FAILOVER": "nope"},
            ["trunks.a.failover: no trunk named 'nope'"],
        ),
        (
            {"RCMLROUTER_TRUNKS_A_FAILOVER": "a"},
            ["trunks.a.failover: the chain comes back to 'a' (a -> a)"],
        ),
        (
            {"RCMLROUTER_TRUNKS_A_FAILOVER": "b", "RCMLROUTER_TRUNKS_B_FAILOVER": "c"},
            [
                "trunks.a.failover: the chain comes back to 'a' (a -> b -> c -> a)",
                "trunks.b.failover: the chain comes back to 'b' (b -> c -> a -> b)",
                "trunks.c.failover: the chain comes back to 'c' (c -> a -> b -> c)",
            ],
        ),
        (
            {"RCMLROUTER_TRUNKS_B_FAILOVER_TIMEOUT": "-1"},
            ["trunks.b.failover_timeout: must be 0 (Timer B only) or positive"],
        ),
    ],
)
def test_trunk_failover_problems(env: dict[str, str], problems: list[str]) -> None:
    base = {
        "RCMLROUTER_TRUNKS_A_URI": "sip:127.0.0.1:5071",
        "RCMLROUTER_TRUNKS_B_URI": "sip:127.0.0.1:5072",
        "RCMLROUTER_TRUNKS_C_URI": "sip:127.0.0.1:5073",
        "RCMLROUTER_TRUNKS_C_FAILOVER": "a",
    }
    if "RCMLROUTER_TRUNKS_B_FAILOVER" not in env:
        del base["RCMLROUTER_TRUNKS_C_FAILOVER"]
    with pytest.raises(ConfigError) as info:
        load_config(None, {**base, **env})
    assert info.value.problems == problems
