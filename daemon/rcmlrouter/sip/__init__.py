"""rcmlrouter.sip: the SIP stack.

Sans-I/O core: ``uri`` (URIs, name-addrs, Via), ``message`` (parse/serialize), ``response``
(building responses), ``sdp`` (offer/answer), ``timers`` (one timer heap), ``transaction``
(RFC 3261 §17 state machines), ``dialog`` (UAS dialogs). I/O: ``transport`` (UDP/TCP sockets).
Application-facing: ``endpoint.SipEndpoint`` with ``call.IncomingCall`` / ``call.IncomingRequest``.
"""
