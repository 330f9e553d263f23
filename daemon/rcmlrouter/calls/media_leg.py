"""A call's own media: the RTP session behind ``<Say>``, ``<Play>``, ``<Pause>``, ``<Gather>``.

:class:`CallMedia` belongs to the call's SIP leg. Before the 200 OK it takes an RTP port, binds it
and returns our SDP: the answer to the INVITE's offer, or an offer when the INVITE had none (late
offer: the answer arrives in the ACK and :meth:`CallMedia.on_answered` applies it). It follows
the caller's re-INVITEs (a new address or codec; ``sendonly``/``inactive`` is hold: we stop
sending) and takes DTMF from SIP INFO as well as RFC 4733. The session closes when the call
ends; its operations then return at once.
"""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from rcmlrouter.calls.context import CallContext
from rcmlrouter.calls.recording import record_call
from rcmlrouter.errors import MediaError, OverloadError, SipError, SipParseError
from rcmlrouter.media.dtmf import parse_info_dtmf
from rcmlrouter.media.player import ClipSource, SilenceSource, Source
from rcmlrouter.media.session import MediaParams, MediaSession
from rcmlrouter.rcml.model import GatherChild, Pause, Play, Record, Say
from rcmlrouter.rcml.ports import RecordingOutcome
from rcmlrouter.services import MediaServices, Services
from rcmlrouter.sip.call import IncomingCall, IncomingRequest
from rcmlrouter.sip.sdp import AudioAnswer, build_answer, build_offer, parse_offer

log = structlog.get_logger(__name__)

BIND_ATTEMPTS: Final = 8  # ports tried when another process holds the one we were given
DTMF_INFO_TYPES: Final = ("application/dtmf-relay", "application/dtmf")


def media_params(agreed: AudioAnswer, direction: str) -> MediaParams:
    return MediaParams(
        agreed.codec,
        agreed.payload_type,
        agreed.telephone_event_pt,
        agreed.remote_ip,
        agreed.remote_port,
        direction,
    )


class CallMedia:
    """The RTP session of one inbound call (none until :meth:`local_sdp`)."""

    def __init__(self, call: IncomingCall, ctx: CallContext, services: Services) -> None:
        self.call = call
        self.ctx = ctx
        self.services = services
        self.session: MediaSession | None = None
        self.port: int | None = None
        self._late_offer = False
        self._reoffer = False
        call.ended.add_done_callback(lambda _ended: self.close())

    @property
    def media(self) -> MediaServices:
        if self.services.media is None:
            raise MediaError("media is not configured in this process", 12300)
        return self.services.media

    # -- SDP ------------------------------------------------------------------------------------

    async def local_sdp(self) -> bytes:
        """Bind an RTP port and return the SDP for the 200 OK. Raises OverloadError (no port),
        SipParseError / SdpNegotiationError (an offer we cannot answer)."""
        media_config = self.services.config.media
        address = media_config.rtp_address
        remote = self.call.remote_sdp
        offer = parse_offer(remote) if remote else None
        self._late_offer = offer is None
        for _ in range(BIND_ATTEMPTS):
            port = self._acquire_port()
            if offer is not None:
                agreed = build_answer(offer, address, port)
                params, sdp = media_params(agreed, offer.direction), agreed.sdp
            else:  # silent until the ACK brings the answer
                params = MediaParams("PCMU", 0, 101, "0.0.0.0", 0, "inactive")  # noqa: S104
                sdp = build_offer(address, port)
            try:
                self.session = await MediaSession.open(
                    address, port, params, self.media.clock, media_config.idle_keepalive
                )
            except OSError as exc:
                log.warning("media.bind_failed", port=port, error=str(exc))
                self._release_port()
                continue
            self.take_reinvites()
            return sdp
        raise OverloadError("no bindable RTP port")

    def _acquire_port(self) -> int:
        try:
            self.port = self.services.ports.acquire()
        except LookupError as exc:
            raise OverloadError("no free RTP port") from exc
        return self.port

    def _release_port(self) -> None:
        if self.port is not None:
            self.services.ports.release(self.port)
            self.port = None

    def on_answered(self) -> None:
        """The ACK came: with a late offer, its SDP is the caller's answer."""
        if not self._late_offer or self.session is None or not self.call.remote_sdp:
            return
        self._late_offer = False
        try:
            answer = parse_offer(self.call.remote_sdp)
            agreed = build_answer(answer, self.services.config.media.rtp_address, self.port or 0)
        except SipError as exc:
            log.warning("media.bad_ack_sdp", error=str(exc))
            return
        self.session.update(media_params(agreed, answer.direction))

    def take_reinvites(self) -> None:
        """Answer the caller's re-INVITEs here (again, after a ``<Dial>`` bridge relayed them)."""
        self.call.on_reinvite(self._on_reinvite)

    def _on_reinvite(self, request: IncomingRequest) -> None:
        session, body = self.session, request.request.body
        if session is None or session.closed.done() or not body:
            request.respond(200, body=self.call.local_sdp or b"", content_type="application/sdp")
            return
        try:
            offer = parse_offer(body)
            agreed = build_answer(offer, self.services.config.media.rtp_address, self.port or 0)
        except SipParseError as exc:
            request.respond(400, headers=[("Reason", f'SIP;cause=400;text="{exc}"')])
            return
        except SipError as exc:
            request.respond(exc.sip_status)
            return
        session.update(media_params(agreed, offer.direction))
        self.call.local_sdp = agreed.sdp
        request.respond(200, body=agreed.sdp, content_type="application/sdp")

    def on_info(self, request: IncomingRequest) -> bool:
        """A SIP INFO carrying a key press: fed to the session and answered 200 (True)."""
        content_type = (request.request.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in DTMF_INFO_TYPES:
            return False
        request.respond(200)
        digit = parse_info_dtmf(content_type, request.request.body)
        if digit is not None and self.session is not None:
            self.session.receive_digit(digit)
        return True

    # -- a <Dial> bridge in between -------------------------------------------------------------

    def suspend(self) -> None:
        """A bridge carries the caller's media now: stop sending ours."""
        if self.session is not None:
            self.session.sender.on_hold = True

    async def resume(self) -> None:
        """After a bridge: the next media verb offers our media to the caller again (a
        re-INVITE, so it is heard) and takes its re-INVITEs back; a call that just ends does
        not get one."""
        self._reoffer = True

    async def _ready(self) -> None:
        """Before a media operation: the re-offer a bridge left pending."""
        if not self._reoffer:
            return
        self._reoffer = False
        if not self.call.answered or self.call.ended.done():
            return
        if self.session is None:
            saved, self.call.remote_sdp = self.call.remote_sdp, None
            try:
                offer = await self.local_sdp()  # binds a port; silent until the answer
            finally:
                self.call.remote_sdp = saved
        else:
            offer = build_offer(self.services.config.media.rtp_address, self.port or 0)
        self._late_offer = False
        response = await self.call.send_in_dialog("INVITE", [], offer)
        if response is None or response.status >= 300 or not response.body:
            log.warning("media.resume_refused", status=response and response.status)
            return
        self.call.local_sdp = offer
        self.take_reinvites()
        self.call.remote_sdp, self._late_offer = response.body, True
        self.on_answered()

    # -- verbs ----------------------------------------------------------------------------------

    async def play(self, verb: GatherChild, *, interruptible: bool = False) -> str | None:
        await self._ready()
        source = await self._source(verb)
        if self.session is None:  # bridged or never answered with our media: keep the timing
            if isinstance(verb, Pause):
                await asyncio.sleep(verb.length)
            return None
        return await self.session.play(source, interrupt_on_digits=interruptible)

    async def _source(self, verb: GatherChild) -> Source:
        if isinstance(verb, Pause):
            return SilenceSource(float(verb.length))
        if isinstance(verb, Say):
            clip = await self.media.speech.speak(verb.text, verb.voice, verb.language)
            return ClipSource(clip, verb.loop)
        assert isinstance(verb, Play)
        return ClipSource(await self.media.audio.clip(verb.url), verb.loop)

    async def pause(self, seconds: float) -> None:
        await self._ready()
        if self.session is None:
            await asyncio.sleep(seconds)
        else:
            await self.session.play(SilenceSource(seconds))

    async def collect_digits(
        self, num_digits: int, finish_on_key: str, digit_timeout: float
    ) -> str:
        await self._ready()
        if self.session is None:
            return ""
        return await self.session.collect_digits(num_digits, finish_on_key, digit_timeout)

    async def send_digits(self, digits: str) -> None:
        await self._ready()
        if self.session is not None:
            await self.session.send_digits(digits)

    async def record(self, verb: Record) -> RecordingOutcome:
        await self._ready()
        if self.session is None:
            return RecordingOutcome()
        return await record_call(self.session, verb, self.ctx, self.media)

    # -- the end --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the session and give the port back (idempotent)."""
        if self.session is not None:
            self.session.close()
        self._release_port()
