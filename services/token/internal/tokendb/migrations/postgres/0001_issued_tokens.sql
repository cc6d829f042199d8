-- Every token the service issues, by its jti.
CREATE TABLE issued_tokens (
    jti        text        PRIMARY KEY,
    kind       text        NOT NULL,
    subject    text        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX issued_tokens_subject_idx ON issued_tokens (subject);
