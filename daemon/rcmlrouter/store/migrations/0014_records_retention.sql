-- [records] max_age: records are pruned oldest first, in small batches (retention.py). Each
-- table gets an index on the time its age counts from: a call's end (unfinished calls, which
-- have none, are never pruned), a message's, notification's or recording's creation.
CREATE INDEX calls_ended ON calls (end_time) WHERE end_time IS NOT NULL;
CREATE INDEX messages_created ON messages (date_created);
CREATE INDEX notifications_created ON notifications (date_created);
CREATE INDEX recordings_created ON recordings (date_created);
