-- A call placed by <Dial> (Direction outbound-dial) names the call that dialed it: the Calls
-- resource shows it as parent_call_sid and its status callbacks carry ParentCallSid.
ALTER TABLE calls ADD COLUMN parent_call_sid TEXT;
