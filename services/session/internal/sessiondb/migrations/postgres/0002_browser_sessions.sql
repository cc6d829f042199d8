-- Browser sessions (sign-in through an upstream provider or a local
-- password). session_id is the public id (the sid of ID tokens); the
-- cookie is kept only as its SHA-256 (cookie_hash).
CREATE TABLE browser_sessions (
    session_id       text PRIMARY KEY,
    cookie_hash      text NOT NULL UNIQUE,
    clinician_id     text NOT NULL,
    provider         text NOT NULL,
    upstream_subject text NOT NULL DEFAULT '',
    upstream_sid     text NOT NULL DEFAULT '',
    scopes           text NOT NULL,
    claims           text NOT NULL,
    acr              text NOT NULL DEFAULT '',
    amr              text NOT NULL DEFAULT '[]',
    created          timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    absolute_expires timestamptz NOT NULL,
    ended            timestamptz,
    end_reason       text NOT NULL DEFAULT ''
);

CREATE INDEX browser_sessions_clinician_idx ON browser_sessions (clinician_id);
CREATE INDEX browser_sessions_upstream_idx ON browser_sessions (provider, upstream_subject);
CREATE INDEX browser_sessions_upstream_sid_idx ON browser_sessions (provider, upstream_sid);

-- The client apps that joined a session (sent a back-channel logout when
-- it ends).
CREATE TABLE session_clients (
    session_id text NOT NULL,
    client_id  text NOT NULL,
    joined     timestamptz NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

-- Sign-ins under way at an upstream provider, by the SHA-256 of their
-- state. The PKCE verifier and the nonce are derived from the state under
-- a server key, so nothing secret is stored.
CREATE TABLE login_states (
    state_hash text PRIMARY KEY,
    provider   text NOT NULL,
    return_to  text NOT NULL,
    created    timestamptz NOT NULL,
    expires    timestamptz NOT NULL
);

-- Authorisation codes handed to client apps, by their SHA-256: single use
-- (used is set by the one redemption), short-lived.
CREATE TABLE authorization_codes (
    code_hash      text PRIMARY KEY,
    client_id      text NOT NULL,
    redirect_uri   text NOT NULL,
    session_id     text NOT NULL,
    nonce          text NOT NULL DEFAULT '',
    code_challenge text NOT NULL,
    scopes         text NOT NULL,
    created        timestamptz NOT NULL,
    expires        timestamptz NOT NULL,
    used           timestamptz
);

-- Token ids seen once (logout tokens, client assertions): a second use is
-- a replay. Kept until the token has expired.
CREATE TABLE seen_jtis (
    issuer  text NOT NULL,
    jti     text NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (issuer, jti)
);

-- Local sign-in passwords (argon2id, PHC string).
CREATE TABLE local_passwords (
    clinician_id  text PRIMARY KEY,
    password_hash text NOT NULL,
    modified      timestamptz NOT NULL,
    modified_by   text NOT NULL
);

-- Back-channel logout tokens to send to client apps, written with the end
-- of the session; removed once delivered or given up.
CREATE TABLE logout_deliveries (
    id           text PRIMARY KEY,
    session_id   text NOT NULL,
    client_id    text NOT NULL,
    subject      text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    created      timestamptz NOT NULL,
    last_error   text NOT NULL DEFAULT ''
);

CREATE INDEX logout_deliveries_next_idx ON logout_deliveries (next_attempt);
