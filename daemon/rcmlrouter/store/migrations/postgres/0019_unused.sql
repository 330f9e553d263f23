-- Reserved for issue 19 (media streams) and left unused: a stream lives only as long as its call
-- in the process that runs it, and what it leaves behind (its status callbacks, its
-- notifications) goes through the existing outbox and notifications tables. This file keeps the
-- migration numbers without a gap (tests/store/test_postgres_store.py checks the sequence).
SELECT 1;
