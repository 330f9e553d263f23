"""The internal leg's Request-URI: what one node tells the owner about its caller, and what the
owner refuses to read."""

from __future__ import annotations

from rcmlrouter.conference.internal_leg import InternalJoin, decode, encode
from rcmlrouter.conference.participant import Settings
from rcmlrouter.sip.uri import SipUri, parse_uri

CF, CA, COACHED = "CF" + "a" * 32, "CA" + "b" * 32, "CA" + "c" * 32


def test_a_join_survives_the_uri_round_trip() -> None:
    settings = Settings(
        muted=True,
        beep="onExit",
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        coach=COACHED,
        label="agent 7; east",
    )
    join = InternalJoin(CF, CA, settings, "http://127.0.0.1:9/wait?x=1&y=2", "GET")
    user, params = encode(join)
    uri = str(SipUri("sip", user, "127.0.0.1", 5071, dict(params)))
    parsed = parse_uri(uri)
    assert decode(parsed.user or "", dict(parsed.params)) == join
    silent = InternalJoin(CF, CA, Settings(), "")
    user, params = encode(silent)
    assert decode(user, dict(params)) == silent  # waitUrl="" (silence) stays silence
    assert decode(*encode(InternalJoin(CF, CA, Settings()))) == InternalJoin(CF, CA, Settings())


def test_anything_else_is_not_a_join() -> None:
    assert decode("1234", {}) is None
    assert decode(f"rcmlconf-{CF}", {}) is None
    assert decode(f"rcmlconf-{CF}-{CA}x", {}) is None
    assert decode(f"rcmlconf-{CF}-{CA}", {"coach": "nobody"}) is None
    assert decode(f"rcmlconf-{CF}-{CA}", {"beep": "loud"}) is None
