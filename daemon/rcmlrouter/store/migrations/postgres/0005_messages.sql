-- Inbound SIP MESSAGE (SPEC §5): the request's X- headers (its webhook SipHeader_ parameters,
-- rebuilt after a restart) and "Call-ID CSeq" (a MESSAGE re-sent within 32 s is not processed
-- twice, also across a restart).
ALTER TABLE messages ADD COLUMN sip_headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN dedupe_key TEXT;
-- Accepted (stored, answered 202) but not yet processed: found again at the next start.
CREATE INDEX messages_accepted ON messages (date_created) WHERE status = 'accepted';
-- The dedupe keys of the last seconds, read at start.
CREATE INDEX messages_dedupe ON messages (date_created) WHERE dedupe_key IS NOT NULL;
