"""Calls: the supervisor runs every call task; each module holds one idea of a call's life.

Read in data-path order: supervisor → inbound_call (facts, route, ring, document, execute) →
call_state → documents → inbound_leg → call_media / recording → bridge → dialed_leg → in_dialog
→ transfer → transferred_call → call_events (records, callbacks) → recovery (after a crash).
``live_call`` and ``wiring`` are what the supervisor hands to every call."""
