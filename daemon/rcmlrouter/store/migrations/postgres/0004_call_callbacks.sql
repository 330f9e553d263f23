-- What a call still owes its StatusCallback, committed with the call's outbox events: the next
-- SequenceNumber and where to send it. A crash-interrupted call is closed at the next start with
-- its final callback at exactly this sequence and URL, even if the number changed since.
ALTER TABLE calls ADD COLUMN next_sequence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN status_callback TEXT;
ALTER TABLE calls ADD COLUMN status_callback_method TEXT NOT NULL DEFAULT 'POST';
