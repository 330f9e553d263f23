-- PhoneNumber=…*… list filters read an index instead of scanning the account (SPEC §1.4):
-- every 4-character substring ("gram") of every number under a small integer per account,
-- with each gram's row count per account in gram_counts, kept by statement-level triggers
-- (PostgreSQL twin of ../0010_number_grams.sql; store/number_grams.py). Count rows are taken in
-- key order, so two writers in one account never wait on each other in opposite orders.
CREATE TABLE gram_accounts (
    id BIGSERIAL PRIMARY KEY,
    account_sid TEXT COLLATE "C" NOT NULL UNIQUE
);

CREATE TABLE number_grams (
    account_id BIGINT NOT NULL,
    gram TEXT COLLATE "C" NOT NULL,
    phone_number TEXT COLLATE "C" NOT NULL,
    sid TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, gram, phone_number, sid)
);

CREATE TABLE gram_counts (
    account_id BIGINT NOT NULL,
    gram TEXT COLLATE "C" NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (account_id, gram)
);

-- The grams of numbers added and removed by one statement, each [account_sid, phone_number,
-- sid]; counts change once per (account, gram) per statement, in key order (statement-level
-- triggers: a COPY of 100,000 numbers is one pass, not 100,000 updates of the same count rows).
CREATE FUNCTION number_grams_change(added JSONB, removed JSONB)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH gone_rows AS (
        SELECT a.id, r ->> 1 AS phone, r ->> 2 AS sid
        FROM jsonb_array_elements(removed) AS r
        JOIN gram_accounts a ON a.account_sid = r ->> 0
    ), gone_grams AS (
        SELECT DISTINCT id, substr(phone, i, 4) AS gram, phone, sid
        FROM gone_rows, generate_series(1, length(phone) - 3) AS i
    ), gone AS (
        DELETE FROM number_grams d USING gone_grams g
        WHERE d.account_id = g.id AND d.gram = g.gram AND d.phone_number = g.phone
          AND d.sid = g.sid
        RETURNING d.account_id, d.gram
    )
    UPDATE gram_counts c SET total = c.total - x.n
    FROM (SELECT account_id, gram, COUNT(*) AS n FROM gone GROUP BY account_id, gram) AS x
    WHERE c.account_id = x.account_id AND c.gram = x.gram;

    INSERT INTO gram_accounts (account_sid)
    SELECT DISTINCT r ->> 0 FROM jsonb_array_elements(added) AS r ORDER BY 1
    ON CONFLICT DO NOTHING;
    WITH new_rows_ AS (
        SELECT a.id, r ->> 1 AS phone, r ->> 2 AS sid
        FROM jsonb_array_elements(added) AS r
        JOIN gram_accounts a ON a.account_sid = r ->> 0
    ), made AS (
        INSERT INTO number_grams (account_id, gram, phone_number, sid)
        SELECT DISTINCT id, substr(phone, i, 4), phone, sid
        FROM new_rows_, generate_series(1, length(phone) - 3) AS i
        ON CONFLICT DO NOTHING
        RETURNING account_id, gram
    )
    INSERT INTO gram_counts (account_id, gram, total)
    SELECT account_id, gram, COUNT(*) FROM made GROUP BY account_id, gram
    ORDER BY account_id, gram
    ON CONFLICT (account_id, gram) DO UPDATE SET total = gram_counts.total + EXCLUDED.total;
END;
$$;

CREATE FUNCTION ipn_grams_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added JSONB := '[]';
    removed JSONB := '[]';
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT COALESCE(jsonb_agg(jsonb_build_array(account_sid, phone_number, sid)), '[]')
        INTO added FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT COALESCE(jsonb_agg(jsonb_build_array(account_sid, phone_number, sid)), '[]')
        INTO removed FROM old_rows;
    ELSE  -- UPDATE: only numbers whose account or phone number changed
        SELECT COALESCE(jsonb_agg(jsonb_build_array(o.account_sid, o.phone_number, o.sid)), '[]'),
               COALESCE(jsonb_agg(jsonb_build_array(n.account_sid, n.phone_number, n.sid)), '[]')
        INTO removed, added
        FROM old_rows o JOIN new_rows n ON n.sid = o.sid
        WHERE (o.account_sid, o.phone_number) IS DISTINCT FROM (n.account_sid, n.phone_number);
    END IF;
    IF added <> '[]' OR removed <> '[]' THEN
        PERFORM number_grams_change(added, removed);
    END IF;
    RETURN NULL;
END;
$$;

SELECT number_grams_change(
    COALESCE(jsonb_agg(jsonb_build_array(account_sid, phone_number, sid)), '[]'), '[]'
) FROM incoming_phone_numbers;

CREATE TRIGGER ipn_grams_insert AFTER INSERT ON incoming_phone_numbers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ipn_grams_statement();
CREATE TRIGGER ipn_grams_update AFTER UPDATE ON incoming_phone_numbers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ipn_grams_statement();
CREATE TRIGGER ipn_grams_delete AFTER DELETE ON incoming_phone_numbers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ipn_grams_statement();
