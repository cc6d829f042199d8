CREATE TABLE devices (
    uuid        TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL,
    description TEXT NOT NULL,
    type        TEXT NOT NULL,
    active      INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    modified    INTEGER NOT NULL,
    modified_by TEXT NOT NULL
);

CREATE INDEX devices_location_id_idx ON devices (location_id);
CREATE INDEX devices_created_idx ON devices (created, uuid);
