-- Managed signing keys: the private key only sealed (AES-256-GCM under
-- KEY_ENCRYPTION_KEY). generation is unique: of replicas rotating at once,
-- exactly one inserts the next generation. Times are integer microseconds.
CREATE TABLE signing_keys (
    kid          TEXT    PRIMARY KEY,
    alg          TEXT    NOT NULL,
    generation   INTEGER NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    public_jwk   TEXT    NOT NULL,
    sealed_key   BLOB    NOT NULL,
    seal_key_id  TEXT    NOT NULL
);

-- Revoked principals: tokens issued before revoked_before are refused.
-- seq orders revocations by commit (SQLite serialises writers).
CREATE TABLE revocations (
    kind           TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    revoked_before INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    reason         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (kind, subject)
);

CREATE INDEX revocations_seq_idx ON revocations (seq);

CREATE TABLE revocation_sequence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    epoch TEXT    NOT NULL
);

INSERT INTO revocation_sequence (id, seq, epoch) VALUES (1, 0, lower(hex(randomblob(16))));
