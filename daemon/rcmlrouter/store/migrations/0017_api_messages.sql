-- Messages sent through the API (POST Messages) and Idempotency-Key records (issue 18).
-- Twin: postgres/0017_api_messages.sql.
--
-- A message the API queued (direction 'outbound-api') keeps where its status callbacks go and
-- the ApiVersion of the base it came through; once it is being sent, "wire" holds its MESSAGE
-- request's identity (JSON: Call-ID, CSeq, From tag and URI, Via branch, extra headers), written
-- before the request leaves, so a message resent after a crash is a retransmission.
ALTER TABLE messages ADD COLUMN status_callback TEXT;
ALTER TABLE messages ADD COLUMN status_callback_method TEXT NOT NULL DEFAULT 'POST';
ALTER TABLE messages ADD COLUMN api_version TEXT;
ALTER TABLE messages ADD COLUMN wire TEXT;
-- Queued or being sent: found again at the next start (or claimed from a dead node).
CREATE INDEX messages_outbound_pending ON messages (date_created)
    WHERE direction = 'outbound-api' AND status IN ('queued', 'sending');

-- The first answer to a request made with an Idempotency-Key: one per account and key, kept
-- 24 h (then pruned; an expired key may be used again). Written in the same transaction as the
-- resource the request created, so a key never names a resource that was not created.
CREATE TABLE idempotency_keys (
    account_sid TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,     -- sha256 of the request: method, path, format, parameters
    status INTEGER NOT NULL,       -- the HTTP status, content type and body answered
    content_type TEXT NOT NULL,
    body TEXT NOT NULL,
    resource_sid TEXT,             -- what it created (a message SM…, a call CA…)
    created_at REAL NOT NULL,
    PRIMARY KEY (account_sid, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
