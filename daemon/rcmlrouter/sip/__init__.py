"""rcmlrouter.sip: the SIP stack.

Sans-I/O core: ``uri`` (URIs, name-addrs, Via), ``wire`` / ``message`` (parse/serialize),
``response`` (building responses), ``via`` (the Vias we write), ``sdp`` (offer/answer),
``timers`` (one timer heap), ``transaction`` / ``invite_client`` (RFC 3261 §17 state machines),
``dialog``, ``auth`` / ``digest_retry`` (Digest), ``shed`` (503 from raw bytes).
I/O: ``transport`` (listeners, in and out), ``udp`` (UDP sockets, ICMP errors), ``stream`` (one
TCP/TLS connection), ``connector`` (connections we open), ``stream_limiter`` (connection limits).
The endpoint and its parts: ``endpoint.SipEndpoint``, ``receiver`` (what the transports hand
over), ``server`` (requests), ``client`` (client transactions), ``dialer`` + ``outgoing``
(outgoing calls), ``call`` (``IncomingCall`` / ``IncomingRequest``).
"""
