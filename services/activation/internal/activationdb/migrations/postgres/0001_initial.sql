-- Patients, devices, their activations and the hashes of their newest
-- authorisation codes. Every secret column holds an HMAC-SHA256 hash, never
-- the secret itself.

CREATE TABLE patient (
    id             text PRIMARY KEY,
    auth_code_hash bytea,
    created        timestamptz NOT NULL,
    created_by     text NOT NULL,
    modified       timestamptz NOT NULL,
    modified_by    text NOT NULL
);

CREATE TABLE patient_activation (
    id          uuid PRIMARY KEY,
    patient_id  text NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    otp_hash    bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    expires_at  timestamptz NOT NULL,
    completed   timestamptz,
    created     timestamptz NOT NULL,
    created_by  text NOT NULL,
    modified    timestamptz NOT NULL,
    modified_by text NOT NULL
);

CREATE UNIQUE INDEX patient_activation_code_hash_key ON patient_activation (code_hash);
-- At most one unused activation per patient: it is reissued, not duplicated.
CREATE UNIQUE INDEX patient_activation_unused_key ON patient_activation (patient_id) WHERE completed IS NULL;
CREATE INDEX patient_activation_completed_idx ON patient_activation (patient_id, completed DESC) WHERE completed IS NOT NULL;

CREATE TABLE device (
    id             text PRIMARY KEY,
    auth_code_hash bytea,
    created        timestamptz NOT NULL,
    created_by     text NOT NULL,
    modified       timestamptz NOT NULL,
    modified_by    text NOT NULL
);

CREATE TABLE device_activation (
    id          uuid PRIMARY KEY,
    device_id   text NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    completed   timestamptz,
    created     timestamptz NOT NULL,
    created_by  text NOT NULL,
    modified    timestamptz NOT NULL,
    modified_by text NOT NULL
);

CREATE UNIQUE INDEX device_activation_code_hash_key ON device_activation (code_hash);
CREATE UNIQUE INDEX device_activation_unused_key ON device_activation (device_id) WHERE completed IS NULL;
