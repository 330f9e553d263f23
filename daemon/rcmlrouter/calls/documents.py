"""Which RCML document a call runs, and fetching it (SPEC §3.1, §3.2, §5).

- :func:`voice_url` / :func:`refer_url`: the URL and method for a number's calls and REFERs; an
  ``*ApplicationSid`` wins over the number's own URL (seed). None when there is none.
- :class:`CallDocuments`: an inbound (or API) call's ``DocumentSource``: the call's voice parameters
  (``CallStatus`` as it stands) plus the request's own, signed with the number's account token;
  the first failure of the call goes to the number's ``VoiceFallbackUrl`` and each failure the
  fallback absorbed becomes a notification (``rcml/fallback.py``, shared with messages).
- :class:`LegDocuments`: a transferred call's ``DocumentSource``: the leg's parameters plus the
  transfer's, signed with the number's token, without fallback.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from rcmlrouter import metrics
from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.dialed_leg import DialedLeg
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.dates import rfc2822
from rcmlrouter.directory import Directory
from rcmlrouter.errors import RcmlError
from rcmlrouter.rcml.fallback import fetch_once_with_fallback
from rcmlrouter.rcml.fetch import WebhookTarget
from rcmlrouter.rcml.model import Document
from rcmlrouter.store.records import IncomingNumber


async def voice_url(directory: Directory, number: IncomingNumber) -> WebhookTarget | None:
    """Where the number's calls get their first document."""
    url, method = number.voice_url, number.voice_method
    if number.voice_application_sid:
        app = await directory.application(number.voice_application_sid)
        url, method = app.voice_url, app.voice_method
    return WebhookTarget(url, method) if url else None


async def refer_url(directory: Directory, number: IncomingNumber) -> WebhookTarget | None:
    """Where a REFER inside the number's calls gets the document that replaces the RCML."""
    url, method = number.refer_url, number.refer_method
    if number.refer_application_sid:
        app = await directory.application(number.refer_application_sid)
        url, method = app.refer_url, app.refer_method
    return WebhookTarget(url, method) if url else None


def voice_fallback(number: IncomingNumber | None) -> WebhookTarget | None:
    if number is None or not number.voice_fallback_url:
        return None
    return WebhookTarget(number.voice_fallback_url, number.voice_fallback_method)


class CallDocuments:
    """The documents of one inbound call (its ``DocumentSource``)."""

    __slots__ = ("fallback", "state", "wiring")

    def __init__(
        self, state: CallState, wiring: CallWiring, fallback: WebhookTarget | None = None
    ) -> None:
        self.state = state
        self.wiring = wiring
        # where a failed fetch goes: the number's VoiceFallbackUrl, or an API call's FallbackUrl
        self.fallback = fallback or voice_fallback(state.number)

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        """The RCML at ``url`` with the call's parameters plus ``extra``."""
        state = self.state
        params = state.voice_params(state.current_status())
        params.update(extra)
        started = time.perf_counter()
        try:
            return await fetch_once_with_fallback(
                self.wiring.services.fetcher,
                state.fetches,
                WebhookTarget(url, method),
                self.fallback,
                params,
                state.auth_token,
                self.notify,
            )
        except RcmlError as exc:
            metrics.WEBHOOK_FAILURES.labels(str(exc.error_code)).inc()
            raise
        finally:
            metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - started)

    def notify(self, error_code: int, message: str, url: str | None = None) -> None:
        self.wiring.notify(self.state, error_code, message, url)


class LegDocuments:
    """The documents of a transferred call (its ``DocumentSource``)."""

    __slots__ = ("leg", "state", "transfer_params", "wiring")

    def __init__(
        self,
        leg: DialedLeg,
        state: CallState,
        wiring: CallWiring,
        transfer_params: Mapping[str, str],
    ) -> None:
        self.leg = leg
        self.state = state  # the call that dialed the leg: its number's account signs
        self.wiring = wiring
        self.transfer_params = dict(transfer_params)

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        """The leg's parameters plus the transfer's plus ``extra``."""
        leg = self.leg
        assert leg.call is not None
        params = leg.events.params(leg)
        params["CallStatus"] = "completed" if leg.call.ended.done() else "in-progress"
        params["Timestamp"] = rfc2822(time.time())
        params.update(self.transfer_params)
        params.update(extra)
        fetcher = self.wiring.services.fetcher
        outcome = await fetcher.fetch_with_fallback(
            WebhookTarget(url, method), None, params, self.state.auth_token
        )
        return outcome.document
