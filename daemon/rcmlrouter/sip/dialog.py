"""UAS dialog state (RFC 3261 §12), sans-I/O.

A dialog is keyed by (Call-ID, local tag, remote tag). It tracks CSeq in both directions, the
route set (Record-Route of the INVITE, in order) and the remote target (the INVITE's Contact),
and builds in-dialog requests (BYE, NOTIFY...) with the right From/To/tags/CSeq/Route.
"""

from __future__ import annotations

from rcmlrouter.errors import SipParseError
from rcmlrouter.sip.message import SipRequest
from rcmlrouter.sip.uri import SipUri, parse_name_addr, parse_uri

DialogKey = tuple[str, str, str]


class Dialog:
    """One confirmed or early UAS dialog."""

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

    def update_target(self, request: SipRequest) -> None:
        """A target refresh (re-INVITE) may move the remote target."""
        contacts = request.get_all("Contact")
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
    ) -> SipRequest:
        """A new in-dialog request; consumes the next local CSeq number."""
        if not self.remote_target:
            raise SipParseError("dialog has no remote target")
        self.local_cseq += 1
        request = SipRequest(
            method,
            self.remote_target,
            [
                ("Via", via),
                ("Max-Forwards", "70"),
                ("From", self.local_party),
                ("To", self.remote_party),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.local_cseq} {method}"),
            ],
            body,
        )
        request.headers.extend(("Route", route) for route in self.route_set)
        if headers:
            request.headers.extend(headers)
        return request
