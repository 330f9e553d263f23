-- PhoneNumber=…*… list filters read an index instead of scanning the account (SPEC §1.4):
-- every 4-character substring ("gram") of every number under a small integer per account,
-- with each gram's row count per account in gram_counts, kept by triggers (PostgreSQL twin of
-- ../0010_number_grams.sql; store/number_grams.py). Count rows are taken in gram order, so two
-- writers in one account never wait on each other in opposite orders.
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

CREATE FUNCTION number_grams_add(account TEXT, phone TEXT, number_sid TEXT)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    key BIGINT;
BEGIN
    INSERT INTO gram_accounts (account_sid) VALUES (account) ON CONFLICT DO NOTHING;
    SELECT id INTO key FROM gram_accounts WHERE account_sid = account;
    INSERT INTO number_grams (account_id, gram, phone_number, sid)
    SELECT key, substr(phone, i, 4), phone, number_sid
    FROM generate_series(1, length(phone) - 3) AS i
    ON CONFLICT DO NOTHING;
    INSERT INTO gram_counts (account_id, gram, total)
    SELECT key, g, 1
    FROM (SELECT DISTINCT substr(phone, i, 4) AS g FROM generate_series(1, length(phone) - 3) AS i) AS d
    ORDER BY g
    ON CONFLICT (account_id, gram) DO UPDATE SET total = gram_counts.total + 1;
END;
$$;

CREATE FUNCTION number_grams_remove(account TEXT, phone TEXT, number_sid TEXT)
RETURNS void LANGUAGE sql AS $$
    DELETE FROM number_grams
    WHERE account_id = (SELECT id FROM gram_accounts WHERE account_sid = account)
      AND gram IN (SELECT substr(phone, i, 4) FROM generate_series(1, length(phone) - 3) AS i)
      AND phone_number = phone AND sid = number_sid;
    UPDATE gram_counts SET total = total - 1
    WHERE account_id = (SELECT id FROM gram_accounts WHERE account_sid = account)
      AND gram IN (SELECT substr(phone, i, 4) FROM generate_series(1, length(phone) - 3) AS i);
$$;

CREATE FUNCTION ipn_grams_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM number_grams_remove(OLD.account_sid, OLD.phone_number, OLD.sid);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM number_grams_add(NEW.account_sid, NEW.phone_number, NEW.sid);
    END IF;
    RETURN NULL;
END;
$$;

SELECT number_grams_add(account_sid, phone_number, sid) FROM incoming_phone_numbers;

CREATE TRIGGER ipn_grams_insert AFTER INSERT ON incoming_phone_numbers
FOR EACH ROW EXECUTE FUNCTION ipn_grams_change();

CREATE TRIGGER ipn_grams_delete AFTER DELETE ON incoming_phone_numbers
FOR EACH ROW EXECUTE FUNCTION ipn_grams_change();

CREATE TRIGGER ipn_grams_update AFTER UPDATE OF account_sid, phone_number
ON incoming_phone_numbers
FOR EACH ROW
WHEN ((OLD.account_sid, OLD.phone_number) IS DISTINCT FROM (NEW.account_sid, NEW.phone_number))
EXECUTE FUNCTION ipn_grams_change();
