-- Calls without an end time: in progress, or interrupted by a crash (found again at start).
CREATE INDEX calls_unfinished ON calls (start_time) WHERE end_time IS NULL;
