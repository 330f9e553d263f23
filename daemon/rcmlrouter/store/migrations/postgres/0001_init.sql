-- rcmlrouter schema, version 1 (PostgreSQL twin of ../0001_init.sql).
-- Same tables and columns as SQLite so one row layer (store/rows.py) serves both engines:
-- timestamps are DOUBLE PRECISION POSIX seconds (UTC), booleans INTEGER 0/1, JSON as TEXT.
-- Sids, phone numbers, domains and sorted names are COLLATE "C": byte order, as in SQLite.
CREATE TABLE organizations (
    sid TEXT COLLATE "C" PRIMARY KEY,
    domain TEXT COLLATE "C" NOT NULL UNIQUE,
    is_default INTEGER NOT NULL DEFAULT 0,
    date_created DOUBLE PRECISION NOT NULL
);

CREATE TABLE accounts (
    sid TEXT COLLATE "C" PRIMARY KEY,
    parent_sid TEXT REFERENCES accounts (sid),
    organization_sid TEXT NOT NULL REFERENCES organizations (sid),
    friendly_name TEXT NOT NULL,
    email TEXT UNIQUE,
    auth_token TEXT NOT NULL,
    password_hash TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX accounts_parent ON accounts (parent_sid);

CREATE TABLE applications (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name TEXT COLLATE "C" NOT NULL,
    voice_url TEXT,
    voice_method TEXT NOT NULL DEFAULT 'POST',
    sms_url TEXT,
    sms_method TEXT NOT NULL DEFAULT 'POST',
    refer_url TEXT,
    refer_method TEXT NOT NULL DEFAULT 'POST',
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX applications_account ON applications (account_sid, friendly_name, sid);

CREATE TABLE incoming_phone_numbers (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    organization_sid TEXT NOT NULL REFERENCES organizations (sid),
    phone_number TEXT COLLATE "C" NOT NULL,
    friendly_name TEXT NOT NULL,
    is_sip INTEGER NOT NULL,
    number_type TEXT NOT NULL,
    beta INTEGER NOT NULL DEFAULT 0,
    voice_url TEXT,
    voice_method TEXT NOT NULL DEFAULT 'POST',
    voice_fallback_url TEXT,
    voice_fallback_method TEXT NOT NULL DEFAULT 'POST',
    status_callback TEXT,
    status_callback_method TEXT NOT NULL DEFAULT 'POST',
    voice_caller_id_lookup INTEGER NOT NULL DEFAULT 0,
    voice_application_sid TEXT REFERENCES applications (sid) ON DELETE SET NULL,
    sms_url TEXT,
    sms_method TEXT NOT NULL DEFAULT 'POST',
    sms_fallback_url TEXT,
    sms_fallback_method TEXT NOT NULL DEFAULT 'POST',
    sms_application_sid TEXT REFERENCES applications (sid) ON DELETE SET NULL,
    refer_url TEXT,
    refer_method TEXT NOT NULL DEFAULT 'POST',
    refer_application_sid TEXT REFERENCES applications (sid) ON DELETE SET NULL,
    voice_capable INTEGER NOT NULL DEFAULT 1,
    sms_capable INTEGER NOT NULL DEFAULT 1,
    mms_capable INTEGER NOT NULL DEFAULT 0,
    fax_capable INTEGER NOT NULL DEFAULT 0,
    api_version TEXT NOT NULL,
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL
);
-- Provider numbers are unique platform-wide, SIP numbers unique per organization.
CREATE UNIQUE INDEX ipn_provider_unique ON incoming_phone_numbers (phone_number) WHERE is_sip = 0;
CREATE UNIQUE INDEX ipn_sip_unique
    ON incoming_phone_numbers (organization_sid, phone_number) WHERE is_sip = 1;
CREATE INDEX ipn_account_order ON incoming_phone_numbers (account_sid, phone_number, sid);
CREATE INDEX ipn_account_type_order
    ON incoming_phone_numbers (account_sid, number_type, phone_number, sid);
CREATE INDEX ipn_voice_app ON incoming_phone_numbers (voice_application_sid);
CREATE INDEX ipn_sms_app ON incoming_phone_numbers (sms_application_sid);
CREATE INDEX ipn_refer_app ON incoming_phone_numbers (refer_application_sid);

CREATE TABLE inventory (
    phone_number TEXT COLLATE "C" PRIMARY KEY,
    iso_country TEXT NOT NULL,
    number_type TEXT NOT NULL,
    region TEXT,
    rate_center TEXT,
    postal_code TEXT,
    lata TEXT,
    voice INTEGER NOT NULL,
    sms INTEGER NOT NULL,
    mms INTEGER NOT NULL,
    fax INTEGER NOT NULL,
    beta INTEGER NOT NULL DEFAULT 0,
    available_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    assigned_sid TEXT
);
CREATE INDEX inventory_search ON inventory (iso_country, number_type, phone_number);

CREATE TABLE calls (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL,
    number_sid TEXT,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    match_kind TEXT,
    start_time DOUBLE PRECISION NOT NULL,
    answer_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    duration DOUBLE PRECISION,
    sip_status INTEGER,
    urls TEXT NOT NULL DEFAULT '[]',
    used_fallback INTEGER NOT NULL DEFAULT 0,
    error_code INTEGER
);
CREATE INDEX calls_account ON calls (account_sid, start_time, sid);

CREATE TABLE messages (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL,
    number_sid TEXT,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    urls TEXT NOT NULL DEFAULT '[]',
    used_fallback INTEGER NOT NULL DEFAULT 0,
    error_code INTEGER,
    date_created DOUBLE PRECISION NOT NULL
);
CREATE INDEX messages_account ON messages (account_sid, date_created, sid);

CREATE TABLE notifications (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL,
    call_sid TEXT,
    error_code INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    request_url TEXT,
    date_created DOUBLE PRECISION NOT NULL
);
CREATE INDEX notifications_account ON notifications (account_sid, date_created, sid);

-- Durable status-callback outbox; delivered rows are deleted. The id orders events (per call).
CREATE TABLE callback_outbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    call_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_error TEXT
);
CREATE INDEX callback_outbox_call ON callback_outbox (call_sid, id);
