-- Twin of postgres/0008_cluster.sql. SQLite is one node: it has no change feed (changes reach the
-- routing snapshot through the store's in-process listeners) and owns all its work, so the
-- ownership columns stay NULL; they exist so both engines keep one schema (and `migrate` copies).
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    instance TEXT NOT NULL,        -- one run of the node (a second process with its id waits)
    sip TEXT NOT NULL DEFAULT '',
    api TEXT NOT NULL DEFAULT ''
);
ALTER TABLE callback_outbox ADD COLUMN owner TEXT;
ALTER TABLE calls ADD COLUMN owner TEXT;
ALTER TABLE messages ADD COLUMN owner TEXT;
