"""Inbound calls: the supervisor (one task per call), per-call context, the SIP leg, and the
recovery of calls a crash left unfinished. Dial (outbound legs, bridge) and REFER join here."""
