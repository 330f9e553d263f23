"""Dialog state (RFC 3261 §12), UAS and UAC sides, sans-I/O.

A dialog is keyed by (Call-ID, local tag, remote tag). It tracks CSeq in both directions, the
route set (UAS: Record-Route of the INVITE, in order; UAC: Record-Route of the response,
reversed) and the remote target (the peer's Contact), and builds in-dialog requests (BYE,
NOTIFY, re-INVITE, the ACK of a 2xx...) with the right From/To/tags/CSeq/Route.
"""

from __future__ import annotations

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.message import SipMessage, SipRequest, SipResponse
from rcmlrouter.sip.uri import SipUri, parse_name_addr, parse_uri

DialogKey = tuple[str, str, str]


class Dialog:
    """One confirmed or early dialog, either side."""

    __slots__ = (
        "call_id",
        "local_cseq",
        "local_party",
        "local_tag",
        "remote_cseq",
        "remote_party",
        "remote_tag",
        "remote_target",
        "route_set",
    )

    def __init__(
        self,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_party: str,
        remote_party: str,
        remote_target: str,
        route_set: list[str],
        remote_cseq: int,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_party = local_party  # our To value, with our tag: the From of our requests
        self.remote_party = remote_party  # their From value: the To of our requests
        self.remote_target = remote_target
        self.route_set = route_set
        self.remote_cseq = remote_cseq
        self.local_cseq = 0

    @classmethod
    def from_invite(cls, invite: SipRequest, local_tag: str) -> Dialog:
        """The UAS side of the dialog an INVITE creates (§12.1.1)."""
        to_value = invite.get("To") or ""
        remote_tag = invite.from_addr.tag or ""
        contacts = invite.get_all("Contact")
        target = parse_name_addr(contacts[0]).uri if contacts else invite.from_addr.uri
        local_party = to_value if ";tag=" in to_value else f"{to_value};tag={local_tag}"
        return cls(
            invite.call_id,
            local_tag,
            remote_tag,
            local_party,
            invite.get("From") or "",
            str(target),
            invite.get_all("Record-Route"),
            invite.cseq[0],
        )

    @classmethod
    def from_uac_response(cls, invite: SipRequest, response: SipResponse) -> Dialog:
        """The UAC side of the dialog a 1xx (early) or 2xx (confirmed) with a To tag creates
        (§12.1.2). The remote CSeq is unknown until the callee sends a request (0)."""
        contacts = response.get_all("Contact")
        target = parse_name_addr(contacts[0]).uri if contacts else parse_uri(invite.uri)
        dialog = cls(
            invite.call_id,
            invite.from_addr.tag or "",
            response.to_addr.tag or "",
            invite.get("From") or "",
            response.get("To") or "",
            str(target),
            list(reversed(response.get_all("Record-Route"))),
            0,
        )
        dialog.local_cseq = invite.cseq[0]
        return dialog

    @property
    def key(self) -> DialogKey:
        return (self.call_id, self.local_tag, self.remote_tag)

    def accept_remote_cseq(self, request: SipRequest) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (answer 500). ACK and
        CANCEL reuse the INVITE's number and are always accepted."""
        number, method = request.cseq
        if method in ("ACK", "CANCEL"):
            return True
        if number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def update_target(self, message: SipMessage) -> None:
        """A target refresh (re-INVITE, or its 2xx) may move the remote target."""
        contacts = message.get_all("Contact")
        if contacts:
            self.remote_target = str(parse_name_addr(contacts[0]).uri)

    def next_hop(self) -> SipUri:
        """Where in-dialog requests are sent: the first route, else the remote target."""
        if self.route_set:
            return parse_name_addr(self.route_set[0]).uri
        return parse_uri(self.remote_target)

    def build_request(
        self,
        method: str,
        via: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        cseq: int | None = None,
    ) -> SipRequest:
        """A new in-dialog request; consumes the next local CSeq number unless ``cseq`` is
        given (the ACK of a 2xx carries its INVITE's number)."""
        if not self.remote_target:
            raise SipParseError("dialog has no remote target")
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        request = SipRequest(
            method,
            self.remote_target,
            [
                ("Via", via),
                ("Max-Forwards", "70"),
                ("From", self.local_party),
                ("To", self.remote_party),
                ("Call-ID", self.call_id),
                ("CSeq", f"{cseq} {method}"),
            ],
            body,
        )
        request.headers.extend(("Route", route) for route in self.route_set)
        if headers:
            request.headers.extend(headers)
        return request
