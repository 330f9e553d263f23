"""Run an SMS document: ``<Sms>`` / ``<Message>`` send, ``<Redirect>`` continues, nothing else.

The inbound side implements :class:`MessageSession` for a received message and calls
:func:`check_message_document` on every document it obtains (so a voice verb becomes an RCML
error, 12100, and the fallback URL is tried), then :func:`run_message_document`. A verb's
``action`` document replaces the rest of the running document (Twilio semantics); at most
:data:`~rcmlrouter.rcml.ports.MAX_REDIRECTS` further documents are fetched per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from rcmlrouter.errors import RcmlError
from rcmlrouter.rcml.model import Document, Redirect, Sms
from rcmlrouter.rcml.ports import MAX_REDIRECTS, MessageSender, SmsOrigin

MESSAGE_VERBS = (Sms, Redirect)


class MessageSession(Protocol):
    """A received message whose document is running (the inbound side implements it)."""

    sid: str
    account_sid: str
    auth_token: str
    default_to: str
    """Who a reply goes to: the sender of the received message (its From user)."""
    default_from: str
    """The number that was messaged (the To of the received message)."""

    async def fetch(self, url: str, method: str, extra: Mapping[str, str]) -> Document:
        """The document at ``url`` with the message's parameters plus ``extra``."""
        ...

    def notify(self, error_code: int, message: str, url: str | None = None) -> None: ...


def check_message_document(document: Document, url: str | None = None) -> None:
    """Raise ``RcmlError`` (12100) when ``document`` holds a verb an SMS document cannot run."""
    for verb in document.verbs:
        if not isinstance(verb, MESSAGE_VERBS):
            name = type(verb).__name__
            raise RcmlError(
                f"<{name}> is not allowed in an SMS document (only Sms, Message, Redirect)",
                12100,
                url,
            )


async def run_message_document(
    document: Document, session: MessageSession, sender: MessageSender
) -> None:
    """Run ``document`` and whatever its ``<Redirect>``s and ``action``s return.

    Raises ``RcmlError`` when a further document cannot be obtained or is not an SMS document.
    """
    origin = SmsOrigin(
        account_sid=session.account_sid,
        default_to=session.default_to,
        default_from=session.default_from,
        direction="outbound-reply",
        number_sid=getattr(session, "number_sid", None),  # optional: the messaged number's sid
    )
    current: Document | None = document
    fetched = 0
    while current is not None:
        check_message_document(current)
        following: tuple[str, str, Mapping[str, str]] | None = None
        for verb in current.verbs:
            if isinstance(verb, Redirect):
                following = (verb.url, verb.method, {})
                break
            assert isinstance(verb, Sms)
            result = await sender.send(verb, origin)
            if verb.action is not None:
                following = (verb.action, verb.method, result.action_params())
                break
        current = None
        if following is not None:
            fetched += 1
            url, method, extra = following
            if fetched > MAX_REDIRECTS:
                raise RcmlError(f"more than {MAX_REDIRECTS} redirects in one message", 12100, url)
            current = await session.fetch(url, method, extra)
            check_message_document(current, url)
