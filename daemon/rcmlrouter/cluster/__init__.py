"""Many nodes on one PostgreSQL store: the change feed (LISTEN/NOTIFY) that keeps every node's
routing snapshot and caches current, snapshot versions, and work claiming (node heartbeats,
a dead node's callbacks, calls and messages finished by a survivor)."""
