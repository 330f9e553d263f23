-- Calls placed through the API (POST Calls, issue 18).
-- PostgreSQL twin of ../0018_api_calls.sql (see there).
ALTER TABLE calls ADD COLUMN originate TEXT;
