-- number_counts kept by statement-level triggers over transition tables (like the gram index,
-- 0010): a statement changes each (account, type, beta) count once, in key order. The row-level
-- triggers of 0002 updated the same count row once per number, and every update of a row a
-- transaction already updated walks that row's growing chain of versions: a COPY of N numbers
-- into one account cost O(N²) (30,000 numbers 10 s; 50,000 passed the command timeout).
DROP TRIGGER ipn_count_insert ON incoming_phone_numbers;
DROP TRIGGER ipn_count_delete ON incoming_phone_numbers;
DROP TRIGGER ipn_count_update ON incoming_phone_numbers;
DROP FUNCTION ipn_count_change();
DROP FUNCTION number_counts_add(TEXT, TEXT, INTEGER, INTEGER);

-- Rows of one key in ``delta`` (added +1, removed -1), netted; unchanged keys write nothing.
CREATE FUNCTION number_counts_apply(delta JSONB) RETURNS void LANGUAGE sql AS $$
    INSERT INTO number_counts (account_sid, number_type, beta, total)
    SELECT d ->> 0, d ->> 1, (d ->> 2)::INTEGER, SUM((d ->> 3)::INTEGER)
    FROM jsonb_array_elements(delta) AS d
    GROUP BY 1, 2, 3
    HAVING SUM((d ->> 3)::INTEGER) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (account_sid, number_type, beta)
    DO UPDATE SET total = number_counts.total + EXCLUDED.total;
$$;

CREATE FUNCTION ipn_counts_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta JSONB;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_array(account_sid, number_type, beta, n))
        INTO delta
        FROM (SELECT account_sid, number_type, beta, COUNT(*) AS n FROM new_rows
              GROUP BY 1, 2, 3) AS x;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_agg(jsonb_build_array(account_sid, number_type, beta, -n))
        INTO delta
        FROM (SELECT account_sid, number_type, beta, COUNT(*) AS n FROM old_rows
              GROUP BY 1, 2, 3) AS x;
    ELSE  -- UPDATE: only numbers whose account, type or beta changed
        SELECT jsonb_agg(jsonb_build_array(account_sid, number_type, beta, n))
        INTO delta
        FROM (
            SELECT o.account_sid, o.number_type, o.beta, -1 AS n
            FROM old_rows o JOIN new_rows w ON w.sid = o.sid
            WHERE (o.account_sid, o.number_type, o.beta)
                  IS DISTINCT FROM (w.account_sid, w.number_type, w.beta)
            UNION ALL
            SELECT w.account_sid, w.number_type, w.beta, 1
            FROM old_rows o JOIN new_rows w ON w.sid = o.sid
            WHERE (o.account_sid, o.number_type, o.beta)
                  IS DISTINCT FROM (w.account_sid, w.number_type, w.beta)
        ) AS x;
    END IF;
    IF delta IS NOT NULL THEN
        PERFORM number_counts_apply(delta);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ipn_counts_insert AFTER INSERT ON incoming_phone_numbers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ipn_counts_statement();
CREATE TRIGGER ipn_counts_update AFTER UPDATE ON incoming_phone_numbers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ipn_counts_statement();
CREATE TRIGGER ipn_counts_delete AFTER DELETE ON incoming_phone_numbers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION ipn_counts_statement();
