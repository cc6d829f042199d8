-- Managed signing keys: the private key only sealed (AES-256-GCM under
-- KEY_ENCRYPTION_KEY). generation is unique: of replicas rotating at once,
-- exactly one inserts the next generation.
CREATE TABLE signing_keys (
    kid          text        PRIMARY KEY,
    alg          text        NOT NULL,
    generation   bigint      NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    activates_at timestamptz NOT NULL,
    public_jwk   text        NOT NULL,
    sealed_key   bytea       NOT NULL,
    seal_key_id  text        NOT NULL
);

-- Revoked principals: tokens issued before revoked_before are refused.
-- seq orders revocations by commit (it is taken from revocation_sequence,
-- whose row lock serialises revocations), so a reader that has seen seq n
-- has seen every revocation up to n.
CREATE TABLE revocations (
    kind           text        NOT NULL,
    subject        text        NOT NULL,
    revoked_before timestamptz NOT NULL,
    seq            bigint      NOT NULL,
    recorded_at    timestamptz NOT NULL,
    reason         text        NOT NULL DEFAULT '',
    PRIMARY KEY (kind, subject)
);

CREATE INDEX revocations_seq_idx ON revocations (seq);

CREATE TABLE revocation_sequence (
    id    integer PRIMARY KEY CHECK (id = 1),
    seq   bigint  NOT NULL,
    epoch text    NOT NULL
);

INSERT INTO revocation_sequence (id, seq, epoch)
VALUES (1, 0, md5(random()::text || clock_timestamp()::text));
