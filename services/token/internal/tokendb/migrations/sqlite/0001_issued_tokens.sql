-- Every token the service issues, by its jti. Times are integer
-- microseconds since the epoch (pkg/storage converts them).
CREATE TABLE issued_tokens (
    jti        TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX issued_tokens_subject_idx ON issued_tokens (subject);
