-- <Record>: one row per recording; the audio is {data dir}/recordings/{account_sid}/{sid}.wav.
CREATE TABLE recordings (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL,
    call_sid TEXT,
    duration DOUBLE PRECISION NOT NULL,
    date_created DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT 'completed',
    source TEXT NOT NULL DEFAULT 'RecordVerb',
    channels INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX recordings_account ON recordings (account_sid, date_created, sid);
CREATE INDEX recordings_call ON recordings (call_sid);
