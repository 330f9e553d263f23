-- PhoneNumber=…*… list filters read an index instead of scanning the account (SPEC §1.4).
-- number_grams holds every 4-character substring ("gram") of every number, under a small
-- integer per account (gram_accounts); a filter reads the rows of its most selective 4-character
-- window (a '*' in it expands to the ten digits) and checks the whole pattern on them
-- (store/number_grams.py); gram_counts holds each gram's row count per account, so picking the
-- window costs a few key lookups. Kept by triggers in the writer's transaction.
-- Twin: postgres/0010_number_grams.sql.
CREATE TABLE gram_accounts (
    id INTEGER PRIMARY KEY,
    account_sid TEXT NOT NULL UNIQUE
);

-- substr() start positions: SIP numbers have at most 256 characters
CREATE TABLE gram_positions (i INTEGER PRIMARY KEY);
WITH RECURSIVE k (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 256)
INSERT INTO gram_positions (i) SELECT i FROM k;

CREATE TABLE number_grams (
    account_id INTEGER NOT NULL,
    gram TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    sid TEXT NOT NULL,
    PRIMARY KEY (account_id, gram, phone_number, sid)
) WITHOUT ROWID;

CREATE TABLE gram_counts (
    account_id INTEGER NOT NULL,
    gram TEXT NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (account_id, gram)
) WITHOUT ROWID;

INSERT OR IGNORE INTO gram_accounts (account_sid)
SELECT DISTINCT account_sid FROM incoming_phone_numbers;
INSERT OR IGNORE INTO number_grams (account_id, gram, phone_number, sid)
SELECT a.id, substr(n.phone_number, p.i, 4), n.phone_number, n.sid
FROM incoming_phone_numbers n
JOIN gram_accounts a ON a.account_sid = n.account_sid
JOIN gram_positions p ON p.i <= length(n.phone_number) - 3;
INSERT INTO gram_counts (account_id, gram, total)
SELECT account_id, gram, COUNT(*) FROM number_grams GROUP BY account_id, gram;

CREATE TRIGGER ipn_grams_insert AFTER INSERT ON incoming_phone_numbers
BEGIN
    INSERT OR IGNORE INTO gram_accounts (account_sid) VALUES (NEW.account_sid);
    INSERT OR IGNORE INTO number_grams (account_id, gram, phone_number, sid)
    SELECT a.id, substr(NEW.phone_number, p.i, 4), NEW.phone_number, NEW.sid
    FROM gram_accounts a, gram_positions p
    WHERE a.account_sid = NEW.account_sid AND p.i <= length(NEW.phone_number) - 3;
    INSERT INTO gram_counts (account_id, gram, total)
    SELECT DISTINCT a.id, substr(NEW.phone_number, p.i, 4), 1
    FROM gram_accounts a, gram_positions p
    WHERE a.account_sid = NEW.account_sid AND p.i <= length(NEW.phone_number) - 3
    ON CONFLICT (account_id, gram) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER ipn_grams_delete AFTER DELETE ON incoming_phone_numbers
BEGIN
    DELETE FROM number_grams
    WHERE account_id = (SELECT id FROM gram_accounts WHERE account_sid = OLD.account_sid)
      AND gram IN (SELECT substr(OLD.phone_number, i, 4) FROM gram_positions
                   WHERE i <= length(OLD.phone_number) - 3)
      AND phone_number = OLD.phone_number AND sid = OLD.sid;
    UPDATE gram_counts SET total = total - 1
    WHERE account_id = (SELECT id FROM gram_accounts WHERE account_sid = OLD.account_sid)
      AND gram IN (SELECT substr(OLD.phone_number, i, 4) FROM gram_positions
                   WHERE i <= length(OLD.phone_number) - 3);
END;

CREATE TRIGGER ipn_grams_update AFTER UPDATE OF account_sid, phone_number
ON incoming_phone_numbers
WHEN OLD.account_sid IS NOT NEW.account_sid OR OLD.phone_number IS NOT NEW.phone_number
BEGIN
    DELETE FROM number_grams
    WHERE account_id = (SELECT id FROM gram_accounts WHERE account_sid = OLD.account_sid)
      AND gram IN (SELECT substr(OLD.phone_number, i, 4) FROM gram_positions
                   WHERE i <= length(OLD.phone_number) - 3)
      AND phone_number = OLD.phone_number AND sid = OLD.sid;
    UPDATE gram_counts SET total = total - 1
    WHERE account_id = (SELECT id FROM gram_accounts WHERE account_sid = OLD.account_sid)
      AND gram IN (SELECT substr(OLD.phone_number, i, 4) FROM gram_positions
                   WHERE i <= length(OLD.phone_number) - 3);
    INSERT OR IGNORE INTO gram_accounts (account_sid) VALUES (NEW.account_sid);
    INSERT OR IGNORE INTO number_grams (account_id, gram, phone_number, sid)
    SELECT a.id, substr(NEW.phone_number, p.i, 4), NEW.phone_number, NEW.sid
    FROM gram_accounts a, gram_positions p
    WHERE a.account_sid = NEW.account_sid AND p.i <= length(NEW.phone_number) - 3;
    INSERT INTO gram_counts (account_id, gram, total)
    SELECT DISTINCT a.id, substr(NEW.phone_number, p.i, 4), 1
    FROM gram_accounts a, gram_positions p
    WHERE a.account_sid = NEW.account_sid AND p.i <= length(NEW.phone_number) - 3
    ON CONFLICT (account_id, gram) DO UPDATE SET total = total + 1;
END;
