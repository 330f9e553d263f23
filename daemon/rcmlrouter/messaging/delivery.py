"""One outbound SIP MESSAGE (RFC 3428): where it goes, the request, and its client transaction.

:func:`resolve_target` decides the destination: a SIP URI ``to`` goes straight to its host
(``;transport=udp|tcp``, port 5060 by default); a phone number goes to the ``[sms] gateway``.
:class:`MessageDelivery` sends the request through the endpoint's non-INVITE client transaction
(Timer E retransmissions on UDP, Timer F timeout) and answers one 401/407 challenge **of the
gateway** with the configured digest credentials (new CSeq, same Call-ID and From tag); a
challenge from any other host is a failure (credentials are never sent elsewhere).

Error codes (Twilio's): 21211 invalid ``to``; 21612 a phone number but no gateway configured;
30003 no response (Timer F / ``[sms] timeout``), transport failure, 408/480/503/504, DNS
failure; 30005 404/410/484/604; 30006 415/488/606 (the destination cannot take the message);
30007 403/603 and a refused digest answer; 30008 anything else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from rcmlrouter.errors import SipError, SipParseError
from rcmlrouter.sip.auth import DigestCredentials, authorization, parse_challenge
from rcmlrouter.sip.client import new_branch
from rcmlrouter.sip.message import Header, SipRequest, SipResponse
from rcmlrouter.sip.transport import Source
from rcmlrouter.sip.uri import SipUri, bare_host, parse_uri
from rcmlrouter.sms_format import is_phone_number
from rcmlrouter.store.records import MessageWire

_TRANSPORTS = ("udp", "tcp")

ERROR_INVALID_TO = 21211
ERROR_NO_GATEWAY = 21612
ERROR_UNREACHABLE = 30003
ERROR_UNKNOWN_DESTINATION = 30005
ERROR_CANNOT_RECEIVE = 30006
ERROR_REFUSED = 30007
ERROR_UNKNOWN = 30008

_ERRORS_BY_STATUS = {
    **dict.fromkeys((408, 480, 503, 504), ERROR_UNREACHABLE),
    **dict.fromkeys((404, 410, 484, 604), ERROR_UNKNOWN_DESTINATION),
    **dict.fromkeys((415, 488, 606), ERROR_CANNOT_RECEIVE),
    **dict.fromkeys((401, 403, 407, 603), ERROR_REFUSED),
}


def error_code_for(sip_status: int | None) -> int:
    """The ErrorCode of a failed MESSAGE: ``None`` means no response at all."""
    if sip_status is None:
        return ERROR_UNREACHABLE
    return _ERRORS_BY_STATUS.get(sip_status, ERROR_UNKNOWN)


class TargetError(Exception):
    """The message cannot be addressed; ``error_code`` says why."""

    def __init__(self, error_code: int, message: str) -> None:
        self.error_code = error_code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class MessageTarget:
    """Request-URI, To URI and the transport address to send to."""

    request_uri: str
    to_uri: str
    destination: Source
    via_gateway: bool


def resolve_target(to: str, gateway: str) -> MessageTarget:
    """Where a message to ``to`` goes; raise :class:`TargetError` when it cannot be sent."""
    text = to.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if text.lower().startswith(("sip:", "sips:")) or "@" in text:
        uri = _parse(text if ":" in text.split("@", 1)[0] else f"sip:{text}", "to")
        return MessageTarget(str(uri), str(_bare(uri)), _destination(uri, "to"), False)
    if not is_phone_number(text):
        raise TargetError(ERROR_INVALID_TO, f"'to' is neither a phone number nor a SIP URI: {to!r}")
    if not gateway:
        raise TargetError(ERROR_NO_GATEWAY, f"no [sms] gateway is configured to reach {text}")
    gw = _parse(gateway, "[sms] gateway")
    uri = SipUri("sip", text, gw.host, gw.port, dict(gw.params))
    return MessageTarget(str(uri), str(_bare(uri)), _destination(gw, "[sms] gateway"), True)


def _parse(text: str, what: str) -> SipUri:
    try:
        uri = parse_uri(text)
    except SipParseError as exc:
        raise TargetError(ERROR_INVALID_TO, f"{what}: not a SIP URI: {text!r}") from exc
    if uri.scheme != "sip" or not uri.host:
        raise TargetError(ERROR_INVALID_TO, f"{what}: only sip: URIs are supported: {text!r}")
    return uri


def _destination(uri: SipUri, what: str) -> Source:
    transport = uri.transport
    if transport not in _TRANSPORTS:
        raise TargetError(ERROR_INVALID_TO, f"{what}: unsupported transport {transport!r}")
    return (transport, bare_host(uri.host), uri.port or 5060)


def _bare(uri: SipUri) -> SipUri:
    return SipUri(uri.scheme, uri.user, uri.host, uri.port)


def build_message(
    target: MessageTarget,
    from_uri: str,
    from_tag: str,
    call_id: str,
    cseq: int,
    body: str,
    user_agent: str,
    extra: list[Header] | tuple[Header, ...] | None = None,
) -> SipRequest:
    """A MESSAGE request without Via (the client transaction stamps it)."""
    headers: list[Header] = [
        ("From", f"<{from_uri}>;tag={from_tag}"),
        ("To", f"<{target.to_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} MESSAGE"),
        ("User-Agent", user_agent),
        *(extra or []),
        ("Content-Type", "text/plain;charset=UTF-8"),
    ]
    return SipRequest("MESSAGE", target.request_uri, headers, body.encode())


class RequestSender(Protocol):
    """The SIP endpoint as the sender sees it (``SipEndpoint`` implements it)."""

    async def send_request(
        self, request: SipRequest, destination: Source, *, branch: str | None = None
    ) -> SipResponse: ...


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """The final response status (None: no response) and, on failure, the ErrorCode."""

    sip_status: int | None
    error_code: int | None
    detail: str

    @property
    def sent(self) -> bool:
        return self.error_code is None


WireHook = Callable[[MessageWire], Awaitable[None]]


def new_wire(from_uri: str) -> MessageWire:
    """A fresh identity for a MESSAGE: Call-ID, From tag, CSeq 1, Via branch."""
    return MessageWire(
        f"{secrets.token_hex(16)}@rcmlrouter", 1, secrets.token_hex(6), from_uri, new_branch()
    )


class MessageDelivery:
    """Sends one MESSAGE and answers one digest challenge of the gateway."""

    def __init__(
        self,
        sender: RequestSender,
        credentials: DigestCredentials | None,
        timeout: float,
        user_agent: str,
    ) -> None:
        self.sender = sender
        self.credentials = credentials
        self.timeout = timeout
        self.user_agent = user_agent

    async def deliver(
        self,
        target: MessageTarget,
        from_uri: str,
        body: str,
        *,
        wire: MessageWire | None = None,
        before_send: WireHook | None = None,
    ) -> DeliveryOutcome:
        """Send ``body``; ``wire``: the identity of a request sent before (sent again as is: a
        retransmission), else a new one. ``before_send(wire)`` runs before each request leaves
        (the first and a challenge's answer, which has the next CSeq and a new branch)."""
        try:
            destination = await _resolve(target.destination)
        except OSError as exc:
            return DeliveryOutcome(None, ERROR_UNREACHABLE, f"cannot resolve {exc}")
        wire = wire or new_wire(from_uri)
        response = await self._attempt(target, body, wire, destination, before_send)
        if response is not None and response.status in (401, 407):
            extra = self._answer(response, target, body)
            if extra is None:
                return self._outcome(response, "challenged; no credentials for this destination")
            wire = MessageWire(
                wire.call_id, wire.cseq + 1, wire.from_tag, wire.from_uri, new_branch(), extra
            )
            response = await self._attempt(target, body, wire, destination, before_send)
        if response is None:
            return DeliveryOutcome(None, ERROR_UNREACHABLE, "no response (timeout or transport)")
        return self._outcome(response, "")

    async def _attempt(
        self,
        target: MessageTarget,
        body: str,
        wire: MessageWire,
        destination: Source,
        before_send: WireHook | None,
    ) -> SipResponse | None:
        if before_send is not None:
            await before_send(wire)
        request = build_message(
            target, wire.from_uri, wire.from_tag, wire.call_id, wire.cseq, body,
            self.user_agent, list(wire.headers),
        )  # fmt: skip
        return await self._send(request, destination, wire.branch)

    def _answer(
        self, response: SipResponse, target: MessageTarget, body: str
    ) -> tuple[Header, ...] | None:
        if self.credentials is None or not target.via_gateway:
            return None
        proxy = response.status == 407
        value = response.get("Proxy-Authenticate" if proxy else "WWW-Authenticate")
        if value is None:
            return None
        try:
            challenge = parse_challenge(value)
        except SipParseError:
            return None
        answer = authorization(
            challenge, self.credentials, "MESSAGE", target.request_uri, body=body.encode()
        )
        return (("Proxy-Authorization" if proxy else "Authorization", answer),)

    @staticmethod
    def _outcome(response: SipResponse, detail: str) -> DeliveryOutcome:
        status = response.status
        text = f"{status} {response.reason}" + (f" ({detail})" if detail else "")
        if 200 <= status < 300:
            return DeliveryOutcome(status, None, text)
        return DeliveryOutcome(status, error_code_for(status), text)

    async def _send(
        self, request: SipRequest, destination: Source, branch: str
    ) -> SipResponse | None:
        try:
            async with asyncio.timeout(self.timeout):
                return await self.sender.send_request(request, destination, branch=branch)
        except TimeoutError:
            return None
        except SipError:
            return None  # 408 from the transaction (Timer F, transport failure) or no listener


async def _resolve(destination: Source) -> Source:
    """Resolve a host name without blocking the loop (IP literals pass through)."""
    transport, host, port = destination
    try:
        ipaddress.ip_address(host)
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
        if not infos:
            raise OSError(f"{host}: no address") from None
        host = str(infos[0][4][0])
    return (transport, host, port)
