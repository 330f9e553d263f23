-- AuthToken rotation (issue 11): a rotated-out token keeps authenticating until expires_at
-- ([api] token_grace). PostgreSQL twin of ../0011_account_tokens.sql.
CREATE TABLE account_tokens (
    account_sid TEXT COLLATE "C" NOT NULL,  -- accounts.sid (no foreign key, like ../0011)
    auth_token TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_sid, auth_token)
);
