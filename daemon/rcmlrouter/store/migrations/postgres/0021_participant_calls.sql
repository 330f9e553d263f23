-- A call's page lists the conferences the call took part in (console): participants by call.
CREATE INDEX conference_participants_call ON conference_participants (call_sid);
