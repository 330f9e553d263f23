"""TLS contexts for SIP over TLS (``tls:HOST:PORT`` listeners, RFC 3261 §26.2.1), no sockets.

:func:`server_context` loads the certificate chain and key; with ``verify_client`` a client
must present a certificate signed by ``ca`` (mutual TLS between a carrier's SBC and us).
:func:`client_context` is used for connections we open to ``;transport=tls`` targets: the
system's trust store, or ``ca`` when given, with host names checked.
"""

from __future__ import annotations

import ssl

from rcmlrouter.errors import SipError


def server_context(
    cert: str, key: str, *, ca: str = "", verify_client: bool = False
) -> ssl.SSLContext:
    """Raises :class:`SipError` naming the file that could not be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if ca:
            context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise SipError(f"TLS certificate, key or CA not usable: {exc}") from exc
    if verify_client:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(ca: str = "") -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise SipError(f"TLS CA file not usable: {exc}") from exc


__all__ = ["client_context", "server_context"]
