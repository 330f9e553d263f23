"""URL-fragment connection overrides (Twilio's #ct=…&rt=…&tt=…&rc=…&rp=… syntax)."""

from __future__ import annotations

from rcmlrouter.rcml.fetch import FetchTimeouts, parse_url_overrides, url_override_problems

DEFAULTS = FetchTimeouts(connect=5.0, read=15.0, total=15.0, retries=0, retry_on=frozenset())


def test_no_fragment_returns_the_defaults_unchanged() -> None:
    url = "https://app.example.com/voice?x=1"
    assert parse_url_overrides(url, DEFAULTS) == (url, DEFAULTS)
    assert url_override_problems(url) == []


def test_every_key() -> None:
    url, timeouts = parse_url_overrides(
        "https://app.example.com/voice?x=1#ct=1500&rt=2500&tt=4000&rc=3&rp=ct,5xx", DEFAULTS
    )
    assert url == "https://app.example.com/voice?x=1"
    assert timeouts == FetchTimeouts(
        connect=1.5, read=2.5, total=4.0, retries=3, retry_on=frozenset({"ct", "5xx"})
    )


def test_rc_without_rp_uses_twilios_default_policy() -> None:
    _url, timeouts = parse_url_overrides("http://a.example.com/#rc=2", DEFAULTS)
    assert (timeouts.retries, timeouts.retry_on) == (2, frozenset({"ct"}))
    configured = FetchTimeouts(retry_on=frozenset({"5xx"}))
    _url, timeouts = parse_url_overrides("http://a.example.com/#rc=2", configured)
    assert timeouts.retry_on == frozenset({"5xx"})


def test_bad_keys_are_ignored_and_the_good_ones_kept() -> None:
    url, timeouts = parse_url_overrides(
        "http://a.example.com/v#ct=abc&rt=0&tt=2000&rc=9&rp=ct,bogus&zz=1&section", DEFAULTS
    )
    assert url == "http://a.example.com/v"
    assert timeouts == FetchTimeouts(connect=5.0, read=15.0, total=2.0)


def test_problems_are_listed_for_provisioning() -> None:
    problems = url_override_problems("http://a.example.com/v#ct=abc&rt=0&rc=9&rp=bogus&zz=1")
    assert len(problems) == 5
    assert problems[0].startswith("ct='abc'")
    assert problems[1].startswith("rt='0'")
    assert problems[2].startswith("rc='9'")
    assert problems[3].startswith("rp='bogus'")
    assert "unknown override" in problems[4]
    assert url_override_problems("http://a.example.com/v#rp=4xx,rt,all&rc=0&tt=15000") == []


def test_empty_fragment_is_stripped() -> None:
    assert parse_url_overrides("http://a.example.com/v#", DEFAULTS) == (
        "http://a.example.com/v",
        DEFAULTS,
    )
