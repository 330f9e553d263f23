-- Many nodes on one database (cluster/): the change feed and work ownership.
--
-- Change feed: every committed change to numbers, applications, organizations or accounts is
-- appended to change_log by statement-level triggers, IN THE SAME TRANSACTION, under a version
-- drawn from the one-row change_version counter. The counter's row lock is held to COMMIT, so
-- versions commit in order and without gaps (a rolled-back writer gives its numbers back); a node
-- that sees a gap has really missed a notification. The trigger also sends pg_notify on the
-- channel 'rcmlrouter:<schema, cut to 52 characters>' with the changes (kind, sid, action,
-- version) when they fit in one payload, else only the version range (nodes read change_log).
CREATE TABLE change_version (
    one INTEGER PRIMARY KEY DEFAULT 1 CHECK (one = 1),
    version BIGINT NOT NULL
);
INSERT INTO change_version (one, version) VALUES (1, 0);

CREATE TABLE change_log (
    version BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,            -- number | application | organization | account
    sid TEXT COLLATE "C" NOT NULL,
    action TEXT NOT NULL,          -- upsert | delete
    committed_at DOUBLE PRECISION NOT NULL
);

CREATE FUNCTION change_feed_append(change_kind TEXT, changed JSONB) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    total INTEGER := jsonb_array_length(changed);
    last_version BIGINT;
    first_version BIGINT;
    payload TEXT;
BEGIN
    IF total = 0 THEN
        RETURN;
    END IF;
    UPDATE change_version SET version = version + total WHERE one = 1
        RETURNING version INTO last_version;
    first_version := last_version - total + 1;
    INSERT INTO change_log (version, kind, sid, action, committed_at)
    SELECT first_version + ord - 1, change_kind, item ->> 0, item ->> 1,
           EXTRACT(EPOCH FROM clock_timestamp())
    FROM jsonb_array_elements(changed) WITH ORDINALITY AS c (item, ord);
    -- v: first version, n: how many, t: commit time (POSIX s), k + c: the changes when small
    IF total <= 60 THEN
        payload := jsonb_build_object('v', first_version, 'n', total, 'k', change_kind,
            'c', changed, 't', EXTRACT(EPOCH FROM clock_timestamp()))::text;
    ELSE
        payload := jsonb_build_object('v', first_version, 'n', total,
            't', EXTRACT(EPOCH FROM clock_timestamp()))::text;
    END IF;
    PERFORM pg_notify('rcmlrouter:' || left(current_schema(), 52), payload);
END;
$$;

-- One trigger function for the four tables: [sid, action] of every row the statement touched.
CREATE FUNCTION change_feed_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed JSONB;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT COALESCE(jsonb_agg(jsonb_build_array(sid, 'delete')), '[]') INTO changed
        FROM old_rows;
    ELSE
        SELECT COALESCE(jsonb_agg(jsonb_build_array(sid, 'upsert')), '[]') INTO changed
        FROM new_rows;
    END IF;
    PERFORM change_feed_append(TG_ARGV[0], changed);
    RETURN NULL;
END;
$$;

CREATE TRIGGER ipn_feed_insert AFTER INSERT ON incoming_phone_numbers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('number');
CREATE TRIGGER ipn_feed_update AFTER UPDATE ON incoming_phone_numbers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('number');
CREATE TRIGGER ipn_feed_delete AFTER DELETE ON incoming_phone_numbers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('number');
CREATE TRIGGER app_feed_insert AFTER INSERT ON applications
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('application');
CREATE TRIGGER app_feed_update AFTER UPDATE ON applications
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('application');
CREATE TRIGGER app_feed_delete AFTER DELETE ON applications
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('application');
CREATE TRIGGER org_feed_insert AFTER INSERT ON organizations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('organization');
CREATE TRIGGER org_feed_update AFTER UPDATE ON organizations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('organization');
CREATE TRIGGER org_feed_delete AFTER DELETE ON organizations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('organization');
CREATE TRIGGER account_feed_insert AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('account');
CREATE TRIGGER account_feed_update AFTER UPDATE ON accounts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('account');
CREATE TRIGGER account_feed_delete AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION change_feed_statement('account');

-- Work ownership: the node that wrote an outbox event, a call record or an accepted message owns
-- it (the column defaults to the writing connection's rcmlrouter.node_id setting, which the
-- daemon's pool sets). A node whose heartbeat is older than the lease is dead; a survivor claims
-- its rows (cluster/work.py).
CREATE TABLE nodes (
    node_id TEXT COLLATE "C" PRIMARY KEY,
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    instance TEXT NOT NULL,        -- one run of the node (a second process with its id waits)
    sip TEXT NOT NULL DEFAULT '',
    api TEXT NOT NULL DEFAULT ''
);
ALTER TABLE callback_outbox
    ADD COLUMN owner TEXT DEFAULT NULLIF(current_setting('rcmlrouter.node_id', true), '');
ALTER TABLE calls
    ADD COLUMN owner TEXT DEFAULT NULLIF(current_setting('rcmlrouter.node_id', true), '');
ALTER TABLE messages
    ADD COLUMN owner TEXT DEFAULT NULLIF(current_setting('rcmlrouter.node_id', true), '');
CREATE INDEX callback_outbox_owner ON callback_outbox (owner, id);
CREATE INDEX calls_unfinished_owner ON calls (owner) WHERE end_time IS NULL;
CREATE INDEX messages_accepted_owner ON messages (owner) WHERE status = 'accepted';
