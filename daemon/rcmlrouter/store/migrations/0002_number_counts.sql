-- Per-account number counts, kept by triggers, so unfiltered list pages need no COUNT scan.
CREATE TABLE number_counts (
    account_sid TEXT NOT NULL,
    number_type TEXT NOT NULL,
    beta INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (account_sid, number_type, beta)
);

INSERT INTO number_counts (account_sid, number_type, beta, total)
SELECT account_sid, number_type, beta, COUNT(*) FROM incoming_phone_numbers
GROUP BY account_sid, number_type, beta;

CREATE TRIGGER ipn_count_insert AFTER INSERT ON incoming_phone_numbers
BEGIN
    INSERT INTO number_counts (account_sid, number_type, beta, total)
    VALUES (NEW.account_sid, NEW.number_type, NEW.beta, 1)
    ON CONFLICT (account_sid, number_type, beta) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER ipn_count_delete AFTER DELETE ON incoming_phone_numbers
BEGIN
    UPDATE number_counts SET total = total - 1
    WHERE account_sid = OLD.account_sid AND number_type = OLD.number_type AND beta = OLD.beta;
END;

CREATE TRIGGER ipn_count_update AFTER UPDATE OF account_sid, number_type, beta
ON incoming_phone_numbers
BEGIN
    UPDATE number_counts SET total = total - 1
    WHERE account_sid = OLD.account_sid AND number_type = OLD.number_type AND beta = OLD.beta;
    INSERT INTO number_counts (account_sid, number_type, beta, total)
    VALUES (NEW.account_sid, NEW.number_type, NEW.beta, 1)
    ON CONFLICT (account_sid, number_type, beta) DO UPDATE SET total = total + 1;
END;
