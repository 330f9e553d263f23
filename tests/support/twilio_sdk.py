"""The official ``twilio`` SDK pointed at rcmlrouter on loopback: only the base URL changes.

The SDK builds every URL on ``https://api.twilio.com`` (next-page URIs included); this HTTP
client rewrites that origin to the daemon's API before sending.
"""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_ORIGIN = "https://api.twilio.com"


class LoopbackHttpClient(TwilioHttpClient):
    """A ``TwilioHttpClient`` sending to ``origin`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, origin: str) -> None:
        super().__init__(timeout=10)
        self.origin = origin.rstrip("/")
        self.urls: list[str] = []  # every URL requested, after the rewrite

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_ORIGIN):
            url = self.origin + url[len(TWILIO_ORIGIN) :]
        self.urls.append(url)
        return super().request(method, url, *args, **kwargs)


def twilio_client(origin: str, account_sid: str, auth_token: str) -> Client:
    return Client(account_sid, auth_token, http_client=LoopbackHttpClient(origin))
