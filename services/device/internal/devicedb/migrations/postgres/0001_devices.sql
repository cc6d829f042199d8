CREATE TABLE devices (
    uuid        text PRIMARY KEY,
    location_id text NOT NULL,
    description text NOT NULL,
    type        text NOT NULL,
    active      boolean NOT NULL,
    created     timestamptz NOT NULL,
    created_by  text NOT NULL,
    modified    timestamptz NOT NULL,
    modified_by text NOT NULL
);

CREATE INDEX devices_location_id_idx ON devices (location_id);
CREATE INDEX devices_created_idx ON devices (created, uuid);
