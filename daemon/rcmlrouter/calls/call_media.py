"""A call's own media: the RTP session behind ``<Say>``, ``<Play>``, ``<Pause>``, ``<Gather>``.

:class:`CallMedia` belongs to a call's leg and works over any SIP call with a dialog
(:class:`MediaCall`: the caller's ``IncomingCall`` today; an ``OutgoingCall`` placed by the API,
or a stream or conference attached to the session, later). Before the 200 OK it takes an RTP
port, binds it and returns our SDP: the answer to the INVITE's offer, or an offer when the INVITE
had none (late offer: the answer arrives in the ACK and :meth:`CallMedia.on_answered` applies
it). Once bound it owns the call's re-INVITEs (through the call's
:class:`~rcmlrouter.calls.in_dialog.InDialog`: a new address or codec; ``sendonly``/``inactive``
is hold: we stop sending) and takes DTMF from SIP INFO as well as RFC 4733. The session closes
when the call ends; its operations then return at once.
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Final, Protocol

import structlog

from rcmlrouter.calls.call_state import CallState
from rcmlrouter.calls.in_dialog import InDialog
from rcmlrouter.calls.recording import record_call
from rcmlrouter.calls.wiring import CallWiring
from rcmlrouter.errors import MediaError, OverloadError, SipError, SipParseError
from rcmlrouter.media.audio import AudioClip
from rcmlrouter.media.dtmf import parse_info_dtmf
from rcmlrouter.media.player import ClipSource, SilenceSource, Source
from rcmlrouter.media.rtp import BoundPair, bind_pair
from rcmlrouter.media.session import MediaParams, MediaSession
from rcmlrouter.rcml.model import GatherChild, Pause, Play, Record, Say
from rcmlrouter.rcml.ports import RecordingOutcome
from rcmlrouter.services import MediaServices
from rcmlrouter.sip.call import IncomingRequest
from rcmlrouter.sip.message import Header, SipResponse
from rcmlrouter.sip.sdp import AudioAnswer, build_answer, build_offer, parse_offer

log = structlog.get_logger(__name__)

FD_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE})  # the process's (or system's) limit


class MediaCall(Protocol):
    """The SIP call under a media session (``IncomingCall`` or ``OutgoingCall``)."""

    remote_sdp: bytes | None
    local_sdp: bytes | None

    @property
    def answered(self) -> bool: ...

    @property
    def ended(self) -> asyncio.Future[str]: ...

    def send_in_dialog(
        self, method: str, headers: list[Header], body: bytes = b""
    ) -> asyncio.Future[SipResponse | None]: ...


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
    """The RTP session of one call (none until :meth:`local_sdp`); implements the executor's
    ``MediaLeg`` port."""

    def __init__(
        self, call: MediaCall, in_dialog: InDialog, state: CallState, wiring: CallWiring
    ) -> None:
        self.call = call
        self.in_dialog = in_dialog
        self.state = state
        self.wiring = wiring
        self.services = wiring.services
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
        pair = await self._claim_port(address)
        if offer is not None:
            agreed = build_answer(offer, address, pair.port)
            params, sdp = media_params(agreed, offer.direction), agreed.sdp
        else:  # silent until the ACK brings the answer
            params = MediaParams("PCMU", 0, 101, "0.0.0.0", 0, "inactive")  # noqa: S104
            sdp = build_offer(address, pair.port)
        try:
            self.session = await MediaSession.attach(
                pair, params, self.media.clock, media_config.idle_keepalive
            )
        except BaseException:
            self._release_port()  # attach closed the sockets
            raise
        self.take_reinvites()
        return sdp

    async def _claim_port(self, address: str) -> BoundPair:
        """A bound port pair from the pool; ports other processes hold are skipped (the pool
        remembers them a while). OverloadError only when the range or the process's file
        descriptors are used up."""
        ports = self.services.ports
        try:
            claimed = ports.claim(lambda port: bind_pair(address, port))
            while claimed is None:  # a long run of busy ports: let the loop breathe, go on
                await asyncio.sleep(0)
                claimed = ports.claim(lambda port: bind_pair(address, port))
        except LookupError as exc:
            raise OverloadError("no free RTP port") from exc
        except OSError as exc:
            log.error("media.bind_failed", address=address, error=str(exc))
            reason = "out of file descriptors" if exc.errno in FD_ERRNOS else "RTP bind failed"
            raise OverloadError(reason) from exc
        self.port = claimed[0]
        return claimed[1]

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
        self.in_dialog.own_reinvites(self._on_reinvite)

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

    def take_digit(self, request: IncomingRequest, content_type: str) -> None:
        """A SIP INFO carrying a key press (``content_type`` a DTMF type): answered 200, the
        key fed to the session."""
        request.respond(200)
        digit = parse_info_dtmf(content_type, request.request.body)
        if digit is not None and self.session is not None:
            self.session.receive_digit(digit)

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

    async def conference_session(self) -> MediaSession | None:
        """The session a conference mixes (the caller is answered with our media)."""
        await self._ready()
        return self.session if self.session is not None and not self.session.closed.done() else None

    async def play_clip(self, clip: AudioClip, loop: int = 1) -> None:
        """Play a clip of our own (a conference's default wait / hold sound)."""
        if self.session is not None:
            await self.session.play(ClipSource(clip, loop))

    async def streamable(self) -> MediaSession | None:
        """The session a media stream may use (the re-offer a bridge left pending done first);
        None when the call has no media of ours."""
        await self._ready()
        session = self.session
        if session is None or session.closed.done() or session.sender.on_hold:
            return None
        return session

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
        return await record_call(self.session, verb, self.state, self.wiring, self.media)

    def start_call_recording(
        self, path: Path, max_length: float, track: str = "inbound", channels: str = "mono"
    ) -> bool:
        """Record the rest of the call (``Record=true`` of an API call: ``RecordingTrack``,
        ``RecordingChannels``); False without media of ours."""
        if self.session is None or self.session.closed.done():
            return False
        self.session.start_call_recording(path, max_length, track, channels)
        return True

    def stop_call_recording(self) -> float | None:
        return self.session.stop_call_recording() if self.session is not None else None

    # -- the end --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the session and give the port back once its sockets are closed (idempotent)."""
        if self.session is not None:
            self.session.close()
            if self.port is not None:
                port, self.port = self.port, None
                self.session.endpoint.when_closed(lambda: self.services.ports.release(port))
        self._release_port()
