-- Messages sent through the API (POST Messages) and Idempotency-Key records (issue 18).
-- PostgreSQL twin of ../0017_api_messages.sql (see there).
ALTER TABLE messages ADD COLUMN status_callback TEXT;
ALTER TABLE messages ADD COLUMN status_callback_method TEXT NOT NULL DEFAULT 'POST';
ALTER TABLE messages ADD COLUMN api_version TEXT;
ALTER TABLE messages ADD COLUMN wire TEXT;
CREATE INDEX messages_outbound_pending ON messages (date_created)
    WHERE direction = 'outbound-api' AND status IN ('queued', 'sending');
-- A dead node's queued and sending messages are claimed by a survivor (cluster/work.py).
CREATE INDEX messages_outbound_owner ON messages (owner)
    WHERE direction = 'outbound-api' AND status IN ('queued', 'sending');

CREATE TABLE idempotency_keys (
    account_sid TEXT COLLATE "C" NOT NULL,
    idem_key TEXT COLLATE "C" NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body TEXT NOT NULL,
    resource_sid TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_sid, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
