-- AuthToken rotation (issue 11): a rotated-out token keeps authenticating until expires_at
-- ([api] token_grace). Twin: postgres/0011_account_tokens.sql.
CREATE TABLE account_tokens (
    account_sid TEXT NOT NULL,  -- accounts.sid (no foreign key: accounts are never deleted)
    auth_token TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (account_sid, auth_token)
);
