-- Reserved during the wave-3 merges and left unused: this file keeps the migration numbers
-- without a gap (tests/store/test_postgres_store.py checks the sequence and the twins).
SELECT 1;
