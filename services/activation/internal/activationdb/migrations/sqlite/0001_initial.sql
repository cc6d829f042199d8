-- Patients, devices, their activations and the hashes of their newest
-- authorisation codes. Every secret column holds an HMAC-SHA256 hash, never
-- the secret itself. Times are integer microseconds since the epoch (UTC).

CREATE TABLE patient (
    id             TEXT PRIMARY KEY,
    auth_code_hash BLOB,
    created        INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    modified       INTEGER NOT NULL,
    modified_by    TEXT NOT NULL
) STRICT;

CREATE TABLE patient_activation (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    otp_hash    BLOB NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    expires_at  INTEGER NOT NULL,
    completed   INTEGER,
    created     INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    modified    INTEGER NOT NULL,
    modified_by TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX patient_activation_code_hash_key ON patient_activation (code_hash);
-- At most one unused activation per patient: it is reissued, not duplicated.
CREATE UNIQUE INDEX patient_activation_unused_key ON patient_activation (patient_id) WHERE completed IS NULL;
CREATE INDEX patient_activation_completed_idx ON patient_activation (patient_id, completed DESC) WHERE completed IS NOT NULL;

CREATE TABLE device (
    id             TEXT PRIMARY KEY,
    auth_code_hash BLOB,
    created        INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    modified       INTEGER NOT NULL,
    modified_by    TEXT NOT NULL
) STRICT;

CREATE TABLE device_activation (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    completed   INTEGER,
    created     INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    modified    INTEGER NOT NULL,
    modified_by TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX device_activation_code_hash_key ON device_activation (code_hash);
CREATE UNIQUE INDEX device_activation_unused_key ON device_activation (device_id) WHERE completed IS NULL;
