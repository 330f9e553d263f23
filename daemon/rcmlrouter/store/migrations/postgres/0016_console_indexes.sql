-- The call log and the message log filter an account's records by number and date (API To /
-- From / StartTime / DateSent, the console): the account indexes carry the numbers as INCLUDE
-- columns, so a filter is an index-only scan in time order. The numbers never change once
-- written, so the record upserts stay HOT updates. (Twin of ../0016_console_indexes.sql.)
DROP INDEX calls_account;
CREATE INDEX calls_account ON calls (account_sid, start_time, sid) INCLUDE (to_number, from_number);
DROP INDEX messages_account;
CREATE INDEX messages_account ON messages (account_sid, date_created, sid)
    INCLUDE (to_number, from_number);
-- A call's notifications (its page); written on errors only.
CREATE INDEX notifications_call ON notifications (call_sid) WHERE call_sid IS NOT NULL;
