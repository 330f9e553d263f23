-- Twin of ../0022_streams.sql.
-- Media streams (<Connect><Stream>, <Start><Stream>, REST Calls/{CA}/Streams): one row per
-- stream, written by the call's node as the stream starts, stops, fails or is refused, so a
-- call's page (console) lists them on any node. Pruned with their calls ([records] max_age).
CREATE TABLE streams (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL,
    call_sid TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    track TEXT NOT NULL,
    started_by TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code INTEGER,
    error_message TEXT,
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX streams_call ON streams (call_sid);
CREATE INDEX streams_updated ON streams (date_updated);
