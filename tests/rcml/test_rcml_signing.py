"""Twilio-compatible webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

from rcmlrouter.rcml.signing import compute_signature, signature_matches

# Twilio's documented example (https://www.twilio.com/docs/usage/security#validating-requests).
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_TOKEN = "12345"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
TWILIO_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_documented_vector() -> None:
    assert compute_signature(TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN) == TWILIO_SIGNATURE


def test_parameter_order_does_not_matter_and_pairs_are_accepted() -> None:
    pairs = list(reversed(list(TWILIO_PARAMS.items())))
    assert compute_signature(TWILIO_URL, pairs, TWILIO_TOKEN) == TWILIO_SIGNATURE


def test_matches_the_algorithm_written_out() -> None:
    params = {"b": "2", "a": "1", "Ä": "ü"}
    data = "http://x/y" + "a1" + "b2" + "Äü"
    expected = base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode()
    assert compute_signature("http://x/y", params, "tok") == expected


def test_get_signs_the_url_only() -> None:
    url = "http://127.0.0.1/voice?CallSid=CA1&From=%2B1"
    data = url.encode()
    expected = base64.b64encode(hmac.new(b"tok", data, hashlib.sha1).digest()).decode()
    assert compute_signature(url, {}, "tok") == expected


def test_signature_matches_rejects_changes() -> None:
    assert signature_matches(TWILIO_SIGNATURE, TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
    assert not signature_matches(TWILIO_SIGNATURE, TWILIO_URL, TWILIO_PARAMS, "54321")
    assert not signature_matches(TWILIO_SIGNATURE, TWILIO_URL + "&x=1", TWILIO_PARAMS, TWILIO_TOKEN)
    tampered = {**TWILIO_PARAMS, "Digits": "9999"}
    assert not signature_matches(TWILIO_SIGNATURE, TWILIO_URL, tampered, TWILIO_TOKEN)
    assert not signature_matches("garbage ✓", TWILIO_URL, TWILIO_PARAMS, TWILIO_TOKEN)
