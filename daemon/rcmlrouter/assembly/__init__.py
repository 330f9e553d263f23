"""The parts the composition root (:mod:`rcmlrouter.app`) assembles the daemon from: opening the
store, loading the routing snapshot, SIP security and request routing, call media, the web
server. Each module wires one idea; none holds state of its own beyond what it builds."""
