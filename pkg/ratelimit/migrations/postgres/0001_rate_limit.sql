-- Rate-limit counters shared by every replica of a service: one row per
-- bucket (a limit and what it counts: a client address, a code's hash, a
-- principal), holding the counts of the current and the previous fixed
-- window. Rows are only ever changed by single atomic upserts, and expire
-- two windows after their window started.
CREATE TABLE rate_limit (
    bucket       text PRIMARY KEY,
    window_start bigint NOT NULL,
    hits         integer NOT NULL CHECK (hits >= 0),
    prev_hits    integer NOT NULL CHECK (prev_hits >= 0),
    expires_at   bigint NOT NULL
);

CREATE INDEX rate_limit_expires_idx ON rate_limit (expires_at);
