-- Times are integer microseconds since the epoch (pkg/storage converts
-- them).
-- Browser sessions (sign-in through an upstream provider or a local
-- password). session_id is the public id (the sid of ID tokens); the
-- cookie is kept only as its SHA-256 (cookie_hash).
CREATE TABLE browser_sessions (
    session_id       TEXT    PRIMARY KEY,
    cookie_hash      TEXT    NOT NULL UNIQUE,
    clinician_id     TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    upstream_subject TEXT    NOT NULL DEFAULT '',
    upstream_sid     TEXT    NOT NULL DEFAULT '',
    scopes           TEXT    NOT NULL,
    claims           TEXT    NOT NULL,
    acr              TEXT    NOT NULL DEFAULT '',
    amr              TEXT    NOT NULL DEFAULT '[]',
    created          INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    absolute_expires INTEGER NOT NULL,
    ended            INTEGER,
    end_reason       TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX browser_sessions_clinician_idx ON browser_sessions (clinician_id);
CREATE INDEX browser_sessions_upstream_idx ON browser_sessions (provider, upstream_subject);
CREATE INDEX browser_sessions_upstream_sid_idx ON browser_sessions (provider, upstream_sid);

-- The client apps that joined a session (sent a back-channel logout when
-- it ends).
CREATE TABLE session_clients (
    session_id TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    joined     INTEGER NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

-- Sign-ins under way at an upstream provider, by the SHA-256 of their
-- state. The PKCE verifier and the nonce are derived from the state under
-- a server key, so nothing secret is stored.
CREATE TABLE login_states (
    state_hash TEXT    PRIMARY KEY,
    provider   TEXT    NOT NULL,
    return_to  TEXT    NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
);

-- Authorisation codes handed to client apps, by their SHA-256: single use
-- (used is set by the one redemption), short-lived.
CREATE TABLE authorization_codes (
    code_hash      TEXT    PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    nonce          TEXT    NOT NULL DEFAULT '',
    code_challenge TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    created        INTEGER NOT NULL,
    expires        INTEGER NOT NULL,
    used           INTEGER
);

-- Token ids seen once (logout tokens, client assertions): a second use is
-- a replay. Kept until the token has expired.
CREATE TABLE seen_jtis (
    issuer  TEXT    NOT NULL,
    jti     TEXT    NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti)
);

-- Local sign-in passwords (argon2id, PHC string).
CREATE TABLE local_passwords (
    clinician_id  TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    modified      INTEGER NOT NULL,
    modified_by   TEXT    NOT NULL
);

-- Back-channel logout tokens to send to client apps, written with the end
-- of the session; removed once delivered or given up.
CREATE TABLE logout_deliveries (
    id           TEXT    PRIMARY KEY,
    session_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    last_error   TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX logout_deliveries_next_idx ON logout_deliveries (next_attempt);
