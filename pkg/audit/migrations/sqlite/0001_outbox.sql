-- The audit outbox: every audit event a service records, written in the
-- same transaction as the change it describes. seq is the order events
-- are published in (AUTOINCREMENT: never reused after pruning);
-- published_at is set once the broker confirmed the event, and published
-- events are pruned after the retention period. Times are integer
-- microseconds since the epoch (UTC).
CREATE TABLE audit_outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    occurred_at  INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    actor        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    trace_id     TEXT NOT NULL,
    service      TEXT NOT NULL,
    event_data   TEXT NOT NULL,
    published_at INTEGER
) STRICT;

CREATE INDEX audit_outbox_pending_idx ON audit_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX audit_outbox_time_idx ON audit_outbox (occurred_at, seq);
CREATE INDEX audit_outbox_actor_idx ON audit_outbox (actor, occurred_at, seq);
CREATE INDEX audit_outbox_subject_idx ON audit_outbox (subject, occurred_at, seq);
CREATE INDEX audit_outbox_type_idx ON audit_outbox (event_type, occurred_at, seq);

-- The publisher lease: one publisher at a time (several processes may
-- share the file).
CREATE TABLE audit_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

INSERT INTO audit_lease (name, holder, expires_at) VALUES ('publisher', '', 0);
