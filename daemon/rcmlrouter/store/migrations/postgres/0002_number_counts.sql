-- Per-account number counts, kept by triggers, so unfiltered list pages need no COUNT scan
-- (PostgreSQL twin of ../0002_number_counts.sql).
CREATE TABLE number_counts (
    account_sid TEXT COLLATE "C" NOT NULL,
    number_type TEXT NOT NULL,
    beta INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (account_sid, number_type, beta)
);

INSERT INTO number_counts (account_sid, number_type, beta, total)
SELECT account_sid, number_type, beta, COUNT(*) FROM incoming_phone_numbers
GROUP BY account_sid, number_type, beta;

CREATE FUNCTION number_counts_add(account TEXT, kind TEXT, is_beta INTEGER, delta INTEGER)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO number_counts (account_sid, number_type, beta, total)
    VALUES (account, kind, is_beta, delta)
    ON CONFLICT (account_sid, number_type, beta)
    DO UPDATE SET total = number_counts.total + EXCLUDED.total;
$$;

CREATE FUNCTION ipn_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM number_counts_add(OLD.account_sid, OLD.number_type, OLD.beta, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM number_counts_add(NEW.account_sid, NEW.number_type, NEW.beta, 1);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ipn_count_insert AFTER INSERT ON incoming_phone_numbers
FOR EACH ROW EXECUTE FUNCTION ipn_count_change();

CREATE TRIGGER ipn_count_delete AFTER DELETE ON incoming_phone_numbers
FOR EACH ROW EXECUTE FUNCTION ipn_count_change();

CREATE TRIGGER ipn_count_update AFTER UPDATE OF account_sid, number_type, beta
ON incoming_phone_numbers
FOR EACH ROW
WHEN ((OLD.account_sid, OLD.number_type, OLD.beta) IS DISTINCT FROM
      (NEW.account_sid, NEW.number_type, NEW.beta))
EXECUTE FUNCTION ipn_count_change();
