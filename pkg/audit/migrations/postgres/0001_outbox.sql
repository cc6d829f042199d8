-- The audit outbox: every audit event a service records, written in the
-- same transaction as the change it describes. seq is the order events
-- are published in; published_at is set once the broker confirmed the
-- event, and published events are pruned after the retention period.
CREATE TABLE audit_outbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL,
    event_type   text NOT NULL,
    actor        text NOT NULL,
    subject      text NOT NULL,
    outcome      text NOT NULL,
    reason       text NOT NULL,
    trace_id     text NOT NULL,
    service      text NOT NULL,
    event_data   text NOT NULL,
    published_at timestamptz
);

CREATE INDEX audit_outbox_pending_idx ON audit_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX audit_outbox_time_idx ON audit_outbox (occurred_at, seq);
CREATE INDEX audit_outbox_actor_idx ON audit_outbox (actor, occurred_at, seq);
CREATE INDEX audit_outbox_subject_idx ON audit_outbox (subject, occurred_at, seq);
CREATE INDEX audit_outbox_type_idx ON audit_outbox (event_type, occurred_at, seq);

-- The publisher lease: one replica of a service publishes at a time.
CREATE TABLE audit_lease (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

INSERT INTO audit_lease (name, holder, expires_at) VALUES ('publisher', '', '1970-01-01T00:00:00Z');
