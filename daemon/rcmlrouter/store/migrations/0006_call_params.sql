-- The voice parameters of a call with a StatusCallback (SPEC §3.1: From, To, CallerName,
-- ForwardedFrom, SipHeader_X-…), as JSON: the final callback that a restart sends for a call
-- cut by a crash carries the same parameters as the events the call sent itself.
ALTER TABLE calls ADD COLUMN callback_params TEXT NOT NULL DEFAULT '{}';
