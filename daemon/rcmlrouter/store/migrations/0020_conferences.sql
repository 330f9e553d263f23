-- <Dial><Conference>: conferences and their participants. One active (init / in-progress) row
-- per account and friendly name: the same name never becomes two rooms, on one node or many.
CREATE TABLE conferences (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    friendly_name TEXT NOT NULL,
    status TEXT NOT NULL,
    node_id TEXT NOT NULL,
    date_created REAL NOT NULL,
    date_updated REAL NOT NULL,
    reason_ended TEXT,
    call_sid_ending TEXT,
    recording_sid TEXT,
    status_callback TEXT,
    status_callback_method TEXT NOT NULL DEFAULT 'POST',
    status_callback_event TEXT NOT NULL DEFAULT '',
    callback_sequence INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX conferences_active_name ON conferences (account_sid, friendly_name)
    WHERE status IN ('init', 'in-progress');
CREATE INDEX conferences_account ON conferences (account_sid, date_created, sid);
CREATE INDEX conferences_node ON conferences (node_id, status);
CREATE TABLE conference_participants (
    conference_sid TEXT NOT NULL,
    call_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    status TEXT NOT NULL,
    muted INTEGER NOT NULL,
    hold INTEGER NOT NULL,
    start_conference_on_enter INTEGER NOT NULL,
    end_conference_on_exit INTEGER NOT NULL,
    date_created REAL NOT NULL,
    date_updated REAL NOT NULL,
    coaching INTEGER NOT NULL DEFAULT 0,
    call_sid_to_coach TEXT,
    label TEXT,
    PRIMARY KEY (conference_sid, call_sid)
);
