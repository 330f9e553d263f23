-- Calls placed through the API (POST Calls, issue 18). Twin: postgres/0018_api_calls.sql.
--
-- A call the API queued (direction 'outbound-api', status 'queued') keeps what was asked for
-- (To, From, Url / Twiml / ApplicationSid, callbacks, Timeout…) as JSON in "originate" until
-- its INVITE is about to leave; then the column is cleared in the same commit as the call's
-- 'initiated' record. A call found at start (or claimed from a dead node) with "originate" set
-- never reached the network: it is dialled; any other unfinished call is closed as before.
ALTER TABLE calls ADD COLUMN originate TEXT;
